// Splits an application's output stream (a CGI script's stderr, FastCGI STDERR records, a
// supervised backend's stdout) into lines for the error log.
import { StringDecoder } from 'node:string_decoder';
import type { AppOutput } from './app_transport.js';

/** Calls `emit` per non-empty line (CR LF or LF; over `maxLine` chars: cut), the last at 'end'. */
export function forEachLine(output: AppOutput, emit: (line: string) => void, maxLine = 4096): void {
  let partial = '';
  const out = (line: string): void => {
    if (line !== '') emit(line.slice(0, maxLine));
  };
  let decoder: StringDecoder | undefined; // on first output: most scripts write no stderr at all
  output.on('data', (chunk: Buffer) => {
    decoder ??= new StringDecoder('utf8');
    const lines = (partial + decoder.write(chunk)).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) out(line.replace(/\r$/, ''));
    if (partial.length > maxLine) {
      out(partial);
      partial = '';
    }
  });
  output.on('end', () => out(partial + (decoder?.end() ?? '')));
}
