// Command-line parsing for lisod: the Liso positional form, the --config form and the control
// verbs (stop|reload|status), as a pure function from argv to a CliResult (no I/O).
import { parseArgs } from 'node:util';

/** The eight Liso positional arguments, paths still as typed (resolved against cwd later). */
export interface LisoArgs {
  httpPort: number;
  httpsPort: number;
  log: string;
  lock: string;
  www: string;
  cgi: string;
  key: string;
  cert: string;
}

export interface RunOptions {
  configFile: string | null; // as typed; resolved against cwd by config.ts
  liso: LisoArgs | null; // positional values; they override the config file's
  bind: string[] | null; // --bind addresses; override the config file's `bind`
  foreground: boolean; // -f: do not daemonize
}

/** `lisod … stop|reload|status`: signal or query the daemon found through the lock file. */
export type ControlVerb = 'stop' | 'reload' | 'status';
export const kControlVerbs: readonly ControlVerb[] = ['stop', 'reload', 'status'];

export type CliResult =
  | { action: 'help' }
  | { action: 'version' }
  | { action: 'run'; options: RunOptions }
  | { action: 'check'; options: RunOptions } // -t: validate the configuration and exit
  | { action: 'control'; verb: ControlVerb; options: RunOptions } // lisod … stop|reload|status
  | { action: 'usage-error'; message: string }; // print "lisod: <message>" + kUsageHint, exit 2

export const kUsageExitCode = 2;

export const kUsage = `Usage: lisod <http_port> <https_port> <log> <lock> <www> <cgi> <key> <cert>
       lisod --config FILE [options] [<the 8 Liso arguments>]
       lisod --config FILE | <the 8 Liso arguments>  stop|reload|status
       lisod pki init|issue|revoke|crl|list DIR …  (a CA for client certificates; lisod pki --help)

Liso form: ports are 0-65535 (0 picks a free port); <log> receives the error and access
log, <lock> is the lock file, <www> the document root, <cgi> the script that serves
/cgi/..., <key>/<cert> the TLS private key and certificate chain (PEM). Relative paths
are taken from the current directory.

lisod detaches and runs in the background (the command returns once it serves, or
prints why it cannot start and exits 1) unless --foreground is given.
stop, reload and status find the running lisod through the lock file: stop ends it
gracefully (SIGTERM), reload makes it reopen its logs and re-read its configuration and
certificates (SIGHUP), status exits 0 when it runs and 3 when it does not.

Options:
  -c, --config FILE     read settings from a TOML file; its relative paths are taken from
                        the file's directory. Positional arguments given as well override
                        the matching settings of the file.
  -b, --bind ADDR       listen on ADDR instead of the configured addresses (repeatable),
                        e.g. --bind 127.0.0.1 --bind ::1
  -f, --foreground      stay attached to the terminal (do not daemonize)
  -t, --check-config    validate the configuration, key and certificate, then exit
                        (0 valid, 1 invalid)
  -h, --help            print this help and exit
  -v, --version         print the version and exit

Every configuration key is documented in README.md.`;

export const kUsageHint = "Usage: lisod <http_port> <https_port> <log> <lock> <www> <cgi> <key> <cert> | lisod --config FILE [stop|reload|status] (try 'lisod --help')";

const kLisoNames = ['http_port', 'https_port', 'log', 'lock', 'www', 'cgi', 'key', 'cert'] as const;

const kOptions = {
  config: { type: 'string', short: 'c' },
  bind: { type: 'string', short: 'b', multiple: true },
  foreground: { type: 'boolean', short: 'f' },
  'check-config': { type: 'boolean', short: 't' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

/** Parses a decimal TCP port (0–65535); null if `text` is anything else. */
export function parsePort(text: string): number | null {
  if (!/^[0-9]{1,5}$/.test(text)) return null;
  const n = Number(text);
  return n <= 65535 ? n : null;
}

/** Rewrites util.parseArgs' multi-sentence errors into one short line. */
function argsErrorMessage(e: unknown): string {
  const err = e as { code?: string; message?: string };
  const msg = err.message ?? String(e);
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const name = /'([^']+)'/.exec(msg)?.[1] ?? msg;
    if (/^-[0-9]+$/.test(name)) return `'${name}' is not a port number (0–65535)`;
    return `unknown option '${name}'`;
  }
  if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    // "Option '-c, --config <value>' argument missing", "Option '--help' does not take an argument"
    const name = /Option '(?:-[A-Za-z], )?(--?[A-Za-z-]+)/.exec(msg)?.[1] ?? 'option';
    if (msg.includes('argument missing')) return `option '${name}' needs a value`;
    if (msg.includes('does not take an argument')) return `option '${name}' does not take a value`;
  }
  return msg.split('\n')[0]!;
}

/** argv without the node binary and script: process.argv.slice(2). */
export function parseCli(argv: readonly string[]): CliResult {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: kOptions, allowPositionals: true, strict: true });
  } catch (e) {
    return { action: 'usage-error', message: argsErrorMessage(e) };
  }
  const { values } = parsed;
  let positionals = parsed.positionals;
  if (values.help) return { action: 'help' };
  if (values.version) return { action: 'version' };

  // A control verb is the last positional: after --config FILE alone, or after the 8
  // Liso arguments (nginx's `-s stop` style, with the daemon found through its lock file).
  let verb: ControlVerb | null = null;
  const last = positionals[positionals.length - 1];
  if (last !== undefined && (kControlVerbs as readonly string[]).includes(last) &&
      (positionals.length === 1 || positionals.length === kLisoNames.length + 1)) {
    verb = last as ControlVerb;
    positionals = positionals.slice(0, -1);
  }

  let liso: LisoArgs | null = null;
  if (positionals.length !== 0) {
    if (positionals.length !== kLisoNames.length) {
      return {
        action: 'usage-error',
        message: `expected the 8 Liso arguments (${kLisoNames.join(' ')}), got ${positionals.length}`,
      };
    }
    const ports: number[] = [];
    for (const i of [0, 1]) {
      const port = parsePort(positionals[i]!);
      if (port === null) {
        return { action: 'usage-error', message: `${kLisoNames[i]} '${positionals[i]}' is not a port number (0–65535)` };
      }
      ports.push(port);
    }
    for (let i = 2; i < kLisoNames.length; i++) {
      if (positionals[i] === '') return { action: 'usage-error', message: `${kLisoNames[i]} must not be empty` };
    }
    const [, , log, lock, www, cgi, key, cert] = positionals as [string, string, string, string, string, string, string, string];
    liso = { httpPort: ports[0]!, httpsPort: ports[1]!, log, lock, www, cgi, key, cert };
  }

  const configFile = values.config ?? null;
  if (configFile === '') return { action: 'usage-error', message: "option '--config' needs a file name" };
  if (configFile === null && liso === null) {
    if (verb !== null) return { action: 'usage-error', message: `${verb}: name the lisod with --config FILE or the 8 Liso arguments (its lock file)` };
    return { action: 'usage-error', message: 'nothing to serve: give the 8 Liso arguments or --config FILE' };
  }
  const bind = values.bind ?? null;
  if (bind?.includes('')) return { action: 'usage-error', message: "option '--bind' needs an address" };

  const options: RunOptions = { configFile, liso, bind, foreground: values.foreground ?? false };
  if (verb !== null) {
    if (values['check-config']) return { action: 'usage-error', message: `-t cannot be combined with '${verb}'` };
    return { action: 'control', verb, options };
  }
  return values['check-config'] ? { action: 'check', options } : { action: 'run', options };
}
