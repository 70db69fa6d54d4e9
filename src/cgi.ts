// The Liso CGI mount (RFC 3875): the one configured script behind /cgi/, run per request by
// the shared application runner (src/app_runner.ts) through the CGI transport.
import os from 'node:os';
import path from 'node:path';
import { AppRunner, inheritedEnv } from './app_runner.js';
import { SpoolBudget } from './app_spool.js';
import { CgiTransport } from './cgi_transport.js';
import { kDefaultSpoolMaxBytes } from './config_spool.js';
import type { Logger } from './log.js';

export interface CgiOptions {
  script: string; // path of the one CGI script
  timeoutMs: number; // script silent this long → process group killed (504 if nothing sent)
  maxProcesses: number; // scripts running at once
  maxQueue: number; // requests waiting for a slot; beyond → 503
  passEnv: string[]; // names copied from lisod's environment (PATH always)
  env: Record<string, string>; // fixed variables for every script
  serverName: string; // SERVER_NAME when a request has no usable Host
  requestBuffering?: boolean; // default true: the script starts with the whole body
  endAfterResponse?: boolean; // default false: SIGTERM the script once its response is complete
  spoolDir?: string; // default os.tmpdir()
  spoolBudget?: SpoolBudget; // default 1 GiB for this runner alone
}

export const kCgiPrefix = '/cgi';

export class CgiRunner extends AppRunner {
  constructor(options: CgiOptions, logger: Logger) {
    const script = path.resolve(options.script);
    super({
      prefix: kCgiPrefix,
      transport: new CgiTransport(script, options.endAfterResponse ?? false),
      scriptFilename: script,
      timeoutMs: options.timeoutMs,
      maxProcesses: options.maxProcesses,
      maxQueue: options.maxQueue,
      requestBuffering: options.requestBuffering ?? true,
      inherited: inheritedEnv(options.passEnv, options.env),
      serverName: options.serverName,
      spoolDir: options.spoolDir ?? os.tmpdir(),
      spoolBudget: options.spoolBudget ?? new SpoolBudget(kDefaultSpoolMaxBytes),
    }, logger);
  }
}
