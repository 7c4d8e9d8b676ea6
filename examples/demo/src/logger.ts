import type { Logger } from '@authmd/service';

/** A terminal logger for people: `12:00:01 audit event=registration.created registration_id=reg_…`, on stderr. */
export function terminalLogger(write: (line: string) => void = (line) => process.stderr.write(line)): Logger {
  const emit = (level: 'info' | 'warn' | 'error') => (message: string, fields: Record<string, unknown> = {}) => {
    const time = new Date().toTimeString().slice(0, 8);
    const tag = level === 'info' ? '' : `${level.toUpperCase()} `;
    const details = Object.entries(fields)
      .filter(([, value]) => value !== undefined)
      .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
      .join(' ');
    write(`${time} ${tag}${message}${details ? ` ${details}` : ''}\n`);
  };
  return { info: emit('info'), warn: emit('warn'), error: emit('error') };
}
