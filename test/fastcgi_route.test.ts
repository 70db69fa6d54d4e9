// RootRouter: SCRIPT_NAME/PATH_INFO under a [[fastcgi]] root, with each path's route
// remembered for up to a second (found or not) and looked up afresh after that.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { parseCgiTarget } from '../src/cgi_env.js';
import { RootRouter } from '../src/fastcgi/route.js';
import { testTempDir } from './helpers/tmp.js';

const target = (t: string) => parseCgiTarget(t, '/php');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('routes are cached for at most a second: a removed script is 404 after it, a new one found', async (t) => {
  const root = testTempDir(t, 'lisod-route-');
  fs.mkdirSync(path.join(root, 'php'));
  fs.writeFileSync(path.join(root, 'php', 'a.php'), '<?php');
  const router = new RootRouter('/php', root, 'index.php');

  const a = router.route(target('/php/a.php/x/y?q=1'));
  t.deepEqual(a, { scriptName: '/php/a.php', scriptFilename: path.join(root, 'php', 'a.php'), pathInfo: '/x/y' });
  t.is(router.route(target('/php/b.php')), null);
  t.is(router.route(target('/php/')), null);

  fs.rmSync(path.join(root, 'php', 'a.php'));
  fs.writeFileSync(path.join(root, 'php', 'b.php'), '<?php');
  fs.writeFileSync(path.join(root, 'php', 'index.php'), '<?php');
  // Within the second: the remembered answers.
  t.deepEqual(router.route(target('/php/a.php/x/y')), a);
  t.is(router.route(target('/php/b.php')), null);

  await sleep(1100);
  t.is(router.route(target('/php/a.php/x/y')), null);
  t.is(router.route(target('/php/b.php'))?.scriptName, '/php/b.php');
  t.deepEqual(router.route(target('/php/')), { scriptName: '/php/index.php', scriptFilename: path.join(root, 'php', 'index.php'), pathInfo: '' });
});

test('the cache keeps the rules: outside root, directories and ".." are never routes; a bad path still throws', (t) => {
  const base = testTempDir(t, 'lisod-route-');
  const root = path.join(base, 'www');
  fs.mkdirSync(path.join(root, 'php', 'dir.php'), { recursive: true });
  fs.writeFileSync(path.join(base, 'secret.php'), '<?php');
  fs.symlinkSync(path.join(base, 'secret.php'), path.join(root, 'php', 'link.php'));
  const router = new RootRouter('/php', root, null);
  for (let i = 0; i < 2; i++) { // the second round is answered from the cache
    t.is(router.route(target('/php/link.php')), null);
    t.is(router.route(target('/php/dir.php')), null);
    t.is(router.route(target('/php/../secret.php')), null);
    t.throws(() => router.route({ path: '/php/%ZZ.php', query: '', pathInfo: '' }));
  }
});
