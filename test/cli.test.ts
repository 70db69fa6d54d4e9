// Unit tests for src/cli.ts: both invocation forms, flags, and one-line usage errors.
import test from 'ava';
import { kUsage, kUsageHint, parseCli, parsePort, type CliResult } from '../src/cli.js';

const liso = ['8080', '8443', 'var/lisod.log', 'var/lisod.lock', 'www', 'cgi-bin/flaskr.cgi', 'k.pem', 'c.pem'];

function usageError(r: CliResult): string {
  if (r.action !== 'usage-error') throw new Error(`expected a usage error, got ${JSON.stringify(r)}`);
  return r.message;
}

test('Liso positional form', (t) => {
  t.deepEqual(parseCli(liso), {
    action: 'run',
    options: {
      configFile: null,
      bind: null,
      foreground: false,
      liso: {
        httpPort: 8080, httpsPort: 8443, log: 'var/lisod.log', lock: 'var/lisod.lock',
        www: 'www', cgi: 'cgi-bin/flaskr.cgi', key: 'k.pem', cert: 'c.pem',
      },
    },
  });
});

test('--config form with --foreground, long and short', (t) => {
  const expected = { action: 'run', options: { configFile: 'lisod.conf', liso: null, bind: null, foreground: true } };
  t.deepEqual(parseCli(['--config', 'lisod.conf', '--foreground']), expected);
  t.deepEqual(parseCli(['-c', 'lisod.conf', '-f']), expected);
  t.deepEqual(parseCli(['--config=lisod.conf', '-f']), expected);
});

test('config file and positional arguments together keep both (positional override later)', (t) => {
  const r = parseCli(['--config', 'x.conf', ...liso]);
  t.is(r.action, 'run');
  if (r.action !== 'run') return;
  t.is(r.options.configFile, 'x.conf');
  t.is(r.options.liso?.httpPort, 8080);
  t.is(r.options.liso?.cert, 'c.pem');
});

test('-t / --check-config selects the check action', (t) => {
  t.is(parseCli(['-t', '--config', 'x.conf']).action, 'check');
  t.is(parseCli(['--check-config', ...liso]).action, 'check');
});

test('--bind is repeatable', (t) => {
  const r = parseCli(['--config', 'x.conf', '--bind', '127.0.0.1', '-b', '::1']);
  t.is(r.action, 'run');
  if (r.action === 'run') t.deepEqual(r.options.bind, ['127.0.0.1', '::1']);
});

test('--help and --version win over everything else', (t) => {
  t.deepEqual(parseCli(['--help']), { action: 'help' });
  t.deepEqual(parseCli(['-h', 'garbage', 'args']), { action: 'help' });
  t.deepEqual(parseCli(['--version']), { action: 'version' });
  t.deepEqual(parseCli(['-v']), { action: 'version' });
});

test('a port that is not a number names the argument and the range', (t) => {
  t.is(usageError(parseCli(['abc', ...liso.slice(1)])), "http_port 'abc' is not a port number (0–65535)");
  t.is(usageError(parseCli(['8080', '65536', ...liso.slice(2)])), "https_port '65536' is not a port number (0–65535)");
  t.is(usageError(parseCli(['8080', '8.5', ...liso.slice(2)])), "https_port '8.5' is not a port number (0–65535)");
  t.is(usageError(parseCli(['-1', ...liso.slice(1)])), "'-1' is not a port number (0–65535)");
});

test('parsePort accepts exactly 0–65535 in decimal', (t) => {
  t.is(parsePort('0'), 0);
  t.is(parsePort('65535'), 65535);
  t.is(parsePort('08080'), 8080);
  for (const bad of ['', '65536', '-1', '0x50', '1e3', ' 80', '80 ', '123456']) t.is(parsePort(bad), null, bad);
});

test('wrong number of positional arguments', (t) => {
  t.regex(usageError(parseCli(liso.slice(0, 3))), /^expected the 8 Liso arguments \(http_port .* cert\), got 3$/);
  t.regex(usageError(parseCli([...liso, 'extra'])), /got 9$/);
});

test('empty path arguments are refused', (t) => {
  const args = [...liso];
  args[4] = '';
  t.is(usageError(parseCli(args)), 'www must not be empty');
});

test('unknown options and missing values are one short line', (t) => {
  t.is(usageError(parseCli(['--bogus'])), "unknown option '--bogus'");
  t.is(usageError(parseCli(['-x', '--config', 'a'])), "unknown option '-x'");
  t.is(usageError(parseCli(['--config'])), "option '--config' needs a value");
  t.is(usageError(parseCli(['--config', ''])), "option '--config' needs a file name");
  t.is(usageError(parseCli(['--foreground=yes', '--config', 'a'])), "option '--foreground' does not take a value");
});

test('no arguments at all is a usage error', (t) => {
  t.is(usageError(parseCli([])), 'nothing to serve: give the 8 Liso arguments or --config FILE');
  t.is(usageError(parseCli(['--foreground'])), 'nothing to serve: give the 8 Liso arguments or --config FILE');
});

test('usage text documents every flag; the hint is one line', (t) => {
  for (const flag of ['--config', '--bind', '--foreground', '--check-config', '--help', '--version']) {
    t.true(kUsage.includes(flag), flag);
  }
  t.false(kUsageHint.includes('\n'));
});

test('--http-port / --https-port: parsed ports, only when given; bad values are usage errors', (t) => {
  const r = parseCli(['--config', 'lisod.conf', '--http-port', '9080', '--https-port=0']);
  t.deepEqual(r, { action: 'run', options: { configFile: 'lisod.conf', liso: null, bind: null, foreground: false, ports: { http: 9080, https: 0 } } });
  const one = parseCli(['-c', 'x.conf', '--https-port', '9443', '-t']);
  t.deepEqual(one.action === 'check' ? one.options.ports : null, { https: 9443 });
  t.is(usageError(parseCli(['-c', 'x', '--http-port', '65536'])), "--http-port '65536' is not a port number (0–65535)");
  t.is(usageError(parseCli(['-c', 'x', '--https-port', 'web'])), "--https-port 'web' is not a port number (0–65535)");
  t.is(usageError(parseCli(['-c', 'x', '--http-port'])), "option '--http-port' needs a value");
  t.regex(kUsage, /--http-port N .*\n.*--https-port N/);
});
