/**
 * `text` itself when it has at most `max` characters (UTF-16 code units); otherwise its start
 * and an ellipsis, `max` characters in all, never ending in half a surrogate pair.
 */
export function shortened(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - 1;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${text.slice(0, end)}…`;
}
