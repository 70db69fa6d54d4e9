// The [cgi] table of the config file: the CGI script behind /cgi/ and how it is run.
import { suggest, type FileReader } from './config_reader.js';

export const kCgiKeys = ['script', 'timeout', 'max_processes', 'max_runnable', 'max_queue', 'pass_env', 'env', 'env_paths',
  'request_buffering', 'end_after_response'] as const;

export function readCgiTable(r: FileReader, t: Record<string, unknown>): void {
  for (const [key, v] of Object.entries(t)) {
    const kp = ['cgi', key];
    switch (key as (typeof kCgiKeys)[number]) {
      case 'script': r.set('cgiScript', kp, r.path(v, kp)); break;
      case 'timeout': r.set('cgiTimeoutMs', kp, r.seconds(v, kp, false)); break;
      case 'max_processes': r.set('cgiMaxProcesses', kp, r.integer(v, kp, 1, 'processes')); break;
      case 'max_runnable':
        r.set('cgiMaxRunnable', kp, r.integerOrAuto(v, kp, 0, Infinity, 'e.g. max_runnable = "auto" (CPUs + 1), 4, or 0 for no limit'));
        break;
      case 'max_queue': r.set('cgiMaxQueue', kp, r.integer(v, kp, 0, 'requests')); break;
      case 'request_buffering': r.set('cgiRequestBuffering', kp, r.boolean(v, kp)); break;
      case 'end_after_response': r.set('cgiEndAfterResponse', kp, r.boolean(v, kp)); break;
      case 'pass_env': r.set('cgiPassEnv', kp, r.envNames(v, kp)); break;
      case 'env':
      case 'env_paths': {
        const merged = { ...r.draft.values.cgiEnv };
        for (const [name, value] of Object.entries(r.envTable(v, kp, key === 'env_paths'))) {
          if (name in merged) r.fail([...kp, name], `${name} is set in both [cgi.env] and [cgi.env_paths]`, 'keep one');
          merged[name] = value;
        }
        r.set('cgiEnv', kp, merged);
        break;
      }
      default:
        r.fail(kp, `unknown key '${key}' in [cgi]`, suggest(key, kCgiKeys));
    }
  }
}
