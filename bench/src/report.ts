/** Plain-text tables for the terminal. */
export function table(headers: string[], rows: string[][], rightAligned: boolean[] = []): string {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => row[i]!.length)));
  const cell = (text: string, i: number) => (rightAligned[i] ? text.padStart(widths[i]!) : text.padEnd(widths[i]!));
  const line = (cells: string[]) => cells.map(cell).join('  ').trimEnd();
  return [line(headers), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export const fixed = (value: number, digits = 0): string => value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
export const percent = (ratio: number | undefined): string => (ratio === undefined ? '–' : `${(ratio * 100).toFixed(1)}%`);
