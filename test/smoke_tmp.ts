import { startLisod, repoRoot } from './helpers/lisod.js';
import path from 'node:path';
const l = await startLisod({ config: { http2: true, cgi: { script: path.join(repoRoot, 'test/cgi-scripts/h2_app.cgi'), request_buffering: false } as never } });
console.log(JSON.stringify({ https: l.httpsPort, base: l.dirs.base, pid: l.pid }));
process.on('SIGTERM', async () => { await l.stop(); process.exit(0); });
setInterval(() => {}, 1000);
