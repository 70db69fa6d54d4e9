// Warnings about a risky but valid setup, shown on the terminal and in the error log: Flaskr's
// tutorial login reachable beyond loopback, and CGI scripts running as root. Pure.
import net from 'node:net';
import path from 'node:path';
import type { LisodConfig } from './config.js';

/** True for 127.0.0.0/8, ::1 and their IPv4-mapped forms: not reachable from other hosts. */
export function isLoopback(addr: string): boolean {
  const v4 = addr.toLowerCase().startsWith('::ffff:') ? addr.slice(7) : addr;
  if (net.isIPv4(v4)) return v4.startsWith('127.');
  return addr === '::1' || addr === '0:0:0:0:0:0:0:1';
}

/** True when the CGI script is Flaskr and nothing gives it a password of its own, so it
 *  accepts the Flask tutorial's well-known admin / default. */
export function flaskrHasDefaultLogin(config: LisodConfig, env: NodeJS.ProcessEnv): boolean {
  if (path.basename(config.cgi.script) !== 'flaskr.cgi') return false;
  const given = (name: string): boolean =>
    Boolean(config.cgi.env[name]) || (config.cgi.passEnv.includes(name) && Boolean(env[name]));
  return !given('FLASKR_PASSWORD');
}

/** The warnings for `config` when run with effective uid `euid` and environment `env`. */
export function exposureWarnings(config: LisodConfig, euid: number | null, env: NodeJS.ProcessEnv): string[] {
  const warnings: string[] = [];
  const open = config.bind.filter((a) => !isLoopback(a));
  if (open.length > 0 && flaskrHasDefaultLogin(config, env)) {
    warnings.push(`listening on ${open.join(', ')} (beyond loopback) while Flaskr still accepts the tutorial login ` +
      'admin / default: set FLASKR_USERNAME and FLASKR_PASSWORD under [cgi.env], or bind 127.0.0.1 / ::1');
  }
  if (euid === 0 && config.user === null) {
    warnings.push('running as root: CGI scripts run as root too; set user = "…" to switch after binding');
  }
  return warnings;
}
