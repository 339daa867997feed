// Turns an app's JSON log line into one readable line for the launcher's console.
const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
const SKIP = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg']);

export function formatLogLine(line: string): string {
  if (!line.startsWith('{')) return line;
  try {
    const entry = JSON.parse(line) as Record<string, unknown>;
    const time = typeof entry['time'] === 'string' ? entry['time'].slice(11, 19) : '';
    const level = (LEVELS[Number(entry['level'])] ?? 'INFO').padEnd(5);
    const extra = Object.entries(entry)
      .filter(([key]) => !SKIP.has(key))
      .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
      .join(' ');
    const message = typeof entry['msg'] === 'string' ? entry['msg'] : '';
    return `${time} ${level} ${message}${extra ? ` ${extra}` : ''}`;
  } catch {
    return line;
  }
}
