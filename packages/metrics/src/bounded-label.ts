/**
 * A label whose values come from outside (operation names, queue names): the first `max`
 * distinct values are kept, later new ones are reported as `other`, so a client cannot
 * create unbounded time series. Values that are not plain identifiers are `invalid`.
 */
export function boundedLabel(options: {
  max: number;
  /** What an absent value is reported as. */
  absent?: string;
  pattern?: RegExp;
  maxLength?: number;
}): (value: string | null | undefined) => string {
  const seen = new Set<string>();
  const pattern = options.pattern ?? /^[_A-Za-z][_0-9A-Za-z]*$/;
  const maxLength = options.maxLength ?? 100;
  const absent = options.absent ?? 'anonymous';
  return (value) => {
    if (value === undefined || value === null || value === '') return absent;
    if (seen.has(value)) return value;
    if (value.length > maxLength || !pattern.test(value)) return 'invalid';
    if (seen.size >= options.max) return 'other';
    seen.add(value);
    return value;
  };
}
