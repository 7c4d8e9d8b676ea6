import type { Logger } from '@authmd/service';

/** Every line a service logged; its audit events are `info('audit', {event, registration_id, …})`. */
export interface RecordingLogger extends Logger {
  lines: { level: string; message: string; fields: Record<string, unknown> }[];
  /** The audit events of one type, oldest first. */
  audit(type: string): Record<string, unknown>[];
}

export function recordingLogger(): RecordingLogger {
  const lines: RecordingLogger['lines'] = [];
  const at = (level: string) => (message: string, fields: Record<string, unknown> = {}) => void lines.push({ level, message, fields });
  return {
    lines,
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    audit: (type) => lines.filter((line) => line.message === 'audit' && line.fields.event === type).map((line) => line.fields),
  };
}
