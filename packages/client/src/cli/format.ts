/** Small text helpers shared by the commands. */

/** Bold on a terminal that allows colour (NO_COLOR unset), plain text elsewhere. */
export function styler(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv): { bold(text: string): string; dim(text: string): string } {
  const on = stream.isTTY === true && !env['NO_COLOR'] && env['TERM'] !== 'dumb';
  return {
    bold: (text) => (on ? `\x1b[1m${text}\x1b[22m` : text),
    dim: (text) => (on ? `\x1b[2m${text}\x1b[22m` : text),
  };
}

/** `1:05` for 65 s, `1:01:05` past an hour. */
export function clock(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const seconds = String(total % 60).padStart(2, '0');
  const minutes = Math.floor(total / 60) % 60;
  const hours = Math.floor(total / 3600);
  return hours ? `${hours}:${String(minutes).padStart(2, '0')}:${seconds}` : `${minutes}:${seconds}`;
}

/** `in 59 min`, `in 2 h 5 min`, `in 30 s`, `expired 3 min ago`. */
export function relative(isoOrMs: string | number, now = Date.now()): string {
  const at = typeof isoOrMs === 'number' ? isoOrMs : Date.parse(isoOrMs);
  if (Number.isNaN(at)) return 'unknown';
  const delta = at - now;
  const span = (ms: number) => {
    const seconds = Math.round(ms / 1000);
    if (seconds < 90) return `${seconds} s`;
    const minutes = Math.round(seconds / 60);
    if (minutes < 120) return `${minutes} min`;
    const hours = Math.floor(minutes / 60);
    if (hours < 48) return `${hours} h ${minutes % 60} min`;
    return `${Math.round(hours / 24)} days`;
  };
  return delta >= 0 ? `in ${span(delta)}` : `expired ${span(-delta)} ago`;
}

/** An ISO time and how far away it is: `2026-11-28T18:19:12.000Z (in 10 min)`. */
export function when(iso: string | undefined, now = Date.now()): string {
  return iso ? `${iso} (${relative(iso, now)})` : 'unknown';
}
