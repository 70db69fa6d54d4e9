// Unit tests for buildCgiEnv: RFC 3875 §4.1 meta-variables, the Liso list, PATH_INFO and
// QUERY_STRING edge cases, header mapping rules (httpoxy, underscores, repeats).
import test from 'ava';
import { buildCgiEnv, parseCgiTarget, percentDecode, CgiTargetError, type CgiEnvOptions } from '../src/cgi_env.js';
import type { CgiRequest } from '../src/native.js';

const options: CgiEnvOptions = {
  scriptFilename: '/srv/cgi-bin/app.cgi',
  scriptName: '/cgi',
  serverName: 'lisod.example',
  inherited: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', FLASKR_DATABASE: '/var/flaskr.sqlite' },
};

function request(over: Partial<CgiRequest> = {}): CgiRequest {
  return {
    id: 7,
    method: 'GET',
    target: '/cgi/login?next=%2F&x=1',
    version: 'HTTP/1.1',
    headers: [
      'Host', 'localhost:8443',
      'Accept', 'text/html',
      'Referer', 'https://localhost/cgi/',
      'Accept-Encoding', 'gzip',
      'Accept-Language', 'en',
      'Accept-Charset', 'utf-8',
      'Cookie', 'a=1',
      'User-Agent', 'test/1.0',
      'Connection', 'keep-alive',
    ],
    remoteAddress: '127.0.0.1',
    remotePort: 50123,
    localAddress: '127.0.0.1',
    localPort: 8443,
    tls: true,
    hasBody: false,
    contentLength: 0,
    ...over,
  };
}

test('every RFC 3875 and Liso variable for a GET over TLS', (t) => {
  const env = buildCgiEnv(request(), options);
  t.deepEqual(env, {
    PATH: '/usr/bin:/bin',
    LANG: 'C.UTF-8',
    FLASKR_DATABASE: '/var/flaskr.sqlite',
    GATEWAY_INTERFACE: 'CGI/1.1',
    SERVER_SOFTWARE: 'Liso/1.0',
    SERVER_PROTOCOL: 'HTTP/1.1',
    SERVER_NAME: 'localhost',
    SERVER_ADDR: '127.0.0.1',
    SERVER_PORT: '8443',
    REMOTE_ADDR: '127.0.0.1',
    REMOTE_PORT: '50123',
    REQUEST_METHOD: 'GET',
    REQUEST_URI: '/cgi/login?next=%2F&x=1',
    SCRIPT_NAME: '/cgi',
    SCRIPT_FILENAME: '/srv/cgi-bin/app.cgi',
    PATH_INFO: '/login',
    QUERY_STRING: 'next=%2F&x=1',
    HTTPS: 'on',
    HTTP_HOST: 'localhost:8443',
    HTTP_ACCEPT: 'text/html',
    HTTP_REFERER: 'https://localhost/cgi/',
    HTTP_ACCEPT_ENCODING: 'gzip',
    HTTP_ACCEPT_LANGUAGE: 'en',
    HTTP_ACCEPT_CHARSET: 'utf-8',
    HTTP_COOKIE: 'a=1',
    HTTP_USER_AGENT: 'test/1.0',
    HTTP_CONNECTION: 'keep-alive',
  });
});

test('POST body: CONTENT_LENGTH and CONTENT_TYPE, no HTTP_ duplicates; no HTTPS over plain TCP', (t) => {
  const env = buildCgiEnv(request({
    method: 'POST',
    target: '/cgi/add',
    tls: false,
    localPort: 8080,
    hasBody: true,
    contentLength: 1234,
    headers: ['Host', 'localhost', 'Content-Type', 'application/x-www-form-urlencoded', 'Content-Length', '1234'],
  }), options);
  t.is(env.CONTENT_LENGTH, '1234');
  t.is(env.CONTENT_TYPE, 'application/x-www-form-urlencoded');
  t.false('HTTP_CONTENT_TYPE' in env);
  t.false('HTTP_CONTENT_LENGTH' in env);
  t.false('HTTPS' in env);
  t.is(env.SERVER_PORT, '8080');
  t.is(env.REQUEST_METHOD, 'POST');
});

test('CONTENT_LENGTH: absent without a body, "0" for an explicit empty body', (t) => {
  t.false('CONTENT_LENGTH' in buildCgiEnv(request(), options));
  const empty = buildCgiEnv(request({ method: 'POST', headers: ['Content-Length', '0'], hasBody: false, contentLength: 0 }), options);
  t.is(empty.CONTENT_LENGTH, '0');
  // A chunked body whose decoded length the runner supplies.
  const chunked = buildCgiEnv(request({
    method: 'POST', headers: ['Transfer-Encoding', 'chunked'], hasBody: true, contentLength: 99,
  }), options);
  t.is(chunked.CONTENT_LENGTH, '99');
  t.false('HTTP_TRANSFER_ENCODING' in chunked);
});

test('httpoxy: a Proxy header never becomes HTTP_PROXY; odd names are dropped', (t) => {
  const env = buildCgiEnv(request({
    headers: [
      'Proxy', 'http://evil.example:8080',
      'proxy', 'http://evil2.example',
      'X_Forwarded_For', 'spoof',
      'X-Forwarded-For', '10.0.0.1',
      'Bad.Name', 'x',
      'Proxy-Authorization', 'Basic abc',
      'X-Custom-Thing', 'yes',
    ],
  }), options);
  t.false('HTTP_PROXY' in env);
  t.false('HTTP_PROXY_AUTHORIZATION' in env);
  t.is(env.HTTP_X_FORWARDED_FOR, '10.0.0.1');
  t.is(env.HTTP_X_CUSTOM_THING, 'yes');
  t.false(Object.keys(env).some((k) => k.includes('.')));
  t.false(Object.values(env).includes('spoof'));
});

test('repeated headers are combined; Cookie with "; "', (t) => {
  const env = buildCgiEnv(request({
    headers: ['Accept', 'a/b', 'Cookie', 'a=1', 'accept', 'c/d', 'Cookie', 'b=2'],
  }), options);
  t.is(env.HTTP_ACCEPT, 'a/b, c/d');
  t.is(env.HTTP_COOKIE, 'a=1; b=2');
});

test('meta-variables win over request headers and inherited values', (t) => {
  const inherited = {
    PATH: '/usr/bin', HTTPS: 'on', SCRIPT_NAME: '/evil', HTTP_HOST: 'inherited', CONTENT_LENGTH: '5', CONTENT_TYPE: 'x/y',
  };
  const env = buildCgiEnv(request({ tls: false, headers: ['Path', '/evil', 'Gateway-Interface', 'x'] }), {
    ...options,
    inherited,
  });
  t.is(env.PATH, '/usr/bin');
  t.is(env.HTTP_PATH, '/evil');
  t.is(env.GATEWAY_INTERFACE, 'CGI/1.1');
  t.is(env.SCRIPT_NAME, '/cgi');
  t.false('HTTPS' in env);
  t.false('HTTP_HOST' in env);
  t.false('CONTENT_LENGTH' in env);
  t.false('CONTENT_TYPE' in env);
});

test('SERVER_NAME from Host (without port), else the configured name', (t) => {
  const name = (host?: string): string =>
    buildCgiEnv(request({ headers: host === undefined ? [] : ['Host', host] }), options).SERVER_NAME!;
  t.is(name('example.org:8080'), 'example.org');
  t.is(name('[::1]:8443'), '[::1]');
  t.is(name('example.org'), 'example.org');
  t.is(name(undefined), 'lisod.example');
  t.is(name('bad host/with space'), 'lisod.example');
  t.is(name(''), 'lisod.example');
});

test('IPv4-mapped addresses are shown as IPv4; IPv6 kept', (t) => {
  const env = buildCgiEnv(request({ remoteAddress: '::ffff:10.1.2.3', localAddress: '::1' }), options);
  t.is(env.REMOTE_ADDR, '10.1.2.3');
  t.is(env.SERVER_ADDR, '::1');
});

const targets: Array<[string, string, string]> = [
  // target, PATH_INFO, QUERY_STRING
  ['/cgi', '', ''],
  ['/cgi/', '/', ''],
  ['/cgi?x=1', '', 'x=1'],
  ['/cgi/login', '/login', ''],
  ['/cgi/a/b/c.txt', '/a/b/c.txt', ''],
  ['/cgi/a%20b', '/a b', ''],
  ['/cgi/caf%C3%A9', '/café', ''],
  ['/cgi/%2e%2E/x', '/../x', ''],
  ['/cgi/a%2Fb', '/a/b', ''],
  ['/cgi/x?', '/x', ''],
  ['/cgi/x?a=1?b=2&c=%20', '/x', 'a=1?b=2&c=%20'],
  ['/cgi/x?q=a+b', '/x', 'q=a+b'],
  ['/cgi/plus+sign', '/plus+sign', ''],
  ['http://localhost:8080/cgi/abs?y=2', '/abs', 'y=2'],
];

for (const [target, pathInfo, query] of targets) {
  test(`target ${target} → PATH_INFO ${JSON.stringify(pathInfo)} QUERY_STRING ${JSON.stringify(query)}`, (t) => {
    const env = buildCgiEnv(request({ target }), options);
    t.is(env.PATH_INFO, pathInfo);
    t.is(env.QUERY_STRING, query);
    t.is(env.REQUEST_URI, target);
  });
}

for (const bad of ['/cgi/%zz', '/cgi/%4', '/cgi/%00', '/cgi/%ff%fe', '/cgibin/x', '/static/x', '/cgi%2fx']) {
  test(`target ${bad} is refused`, (t) => {
    t.throws(() => buildCgiEnv(request({ target: bad }), options), { instanceOf: CgiTargetError });
  });
}

test('percentDecode and parseCgiTarget directly', (t) => {
  t.is(percentDecode('/plain'), '/plain');
  t.is(percentDecode('%41%42%43'), 'ABC');
  t.deepEqual(parseCgiTarget('/cgi/x?y', '/cgi'), { path: '/cgi/x', query: 'y', pathInfo: '/x' });
  t.throws(() => percentDecode('a\0b'), { instanceOf: CgiTargetError });
});

test('pure: the same input gives the same output and inputs are not modified', (t) => {
  const req = request();
  const before = JSON.stringify(req);
  const inherited = { ...options.inherited };
  t.deepEqual(buildCgiEnv(req, options), buildCgiEnv(req, options));
  t.is(JSON.stringify(req), before);
  t.deepEqual(options.inherited, inherited);
});

test('TLS identity: mod_ssl variables; REMOTE_USER and AUTH_TYPE only when verified', (t) => {
  const verified = {
    verify: 'SUCCESS', protocol: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256', subjectDn: 'CN=alice,O=Ops', subjectCn: 'alice',
    issuerDn: 'CN=CA', serial: '0A1B', notBefore: 'Nov 29 08:49:41 2026 GMT', notAfter: 'Nov 29 08:49:41 2027 GMT',
    certPem: '-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n',
  };
  const env = buildCgiEnv(request({ tlsIdentity: verified }), options);
  t.like(env, {
    SSL_CLIENT_VERIFY: 'SUCCESS', SSL_PROTOCOL: 'TLSv1.3', SSL_CIPHER: 'TLS_AES_128_GCM_SHA256',
    SSL_CLIENT_S_DN: 'CN=alice,O=Ops', SSL_CLIENT_S_DN_CN: 'alice', SSL_CLIENT_I_DN: 'CN=CA', SSL_CLIENT_M_SERIAL: '0A1B',
    SSL_CLIENT_V_START: verified.notBefore, SSL_CLIENT_V_END: verified.notAfter, SSL_CLIENT_CERT: verified.certPem,
    REMOTE_USER: 'alice', AUTH_TYPE: 'Cert',
  });
  const failed = buildCgiEnv(request({ tlsIdentity: { ...verified, verify: 'FAILED:certificate has expired' } }), options);
  t.is(failed.SSL_CLIENT_VERIFY, 'FAILED:certificate has expired');
  t.is(failed.SSL_CLIENT_S_DN_CN, 'alice');
  t.false('REMOTE_USER' in failed);
  t.false('AUTH_TYPE' in failed);
  const none = buildCgiEnv(request({ tlsIdentity: { verify: 'NONE', protocol: 'TLSv1.2', cipher: 'ECDHE-ECDSA-AES128-GCM-SHA256' } }), options);
  t.is(none.SSL_CLIENT_VERIFY, 'NONE');
  t.deepEqual(Object.keys(none).filter((k) => k.startsWith('SSL_CLIENT_')), ['SSL_CLIENT_VERIFY']);
  const plain = buildCgiEnv(request({ tls: false }), options);
  t.deepEqual(Object.keys(plain).filter((k) => k.startsWith('SSL_')), []);
});

test('TLS identity variables cannot be inherited ([cgi.env], env_paths, pass_env)', (t) => {
  const forged = { ...options, inherited: { ...options.inherited, SSL_CLIENT_VERIFY: 'SUCCESS', SSL_CLIENT_S_DN_CN: 'root', SSL_PROTOCOL: 'x', REMOTE_USER: 'root', AUTH_TYPE: 'Cert' } };
  const env = buildCgiEnv(request({ tls: false }), forged);
  for (const k of ['SSL_CLIENT_VERIFY', 'SSL_CLIENT_S_DN_CN', 'SSL_PROTOCOL', 'REMOTE_USER', 'AUTH_TYPE']) t.false(k in env, k);
  const withTls = buildCgiEnv(request({ tlsIdentity: { verify: 'NONE', protocol: 'TLSv1.3', cipher: 'c' } }), forged);
  t.is(withTls.SSL_CLIENT_VERIFY, 'NONE');
  t.is(withTls.SSL_PROTOCOL, 'TLSv1.3');
  t.false('REMOTE_USER' in withTls);
  t.is(env.LANG, 'C.UTF-8', 'other inherited variables still pass');
});
