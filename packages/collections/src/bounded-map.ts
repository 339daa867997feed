/**
 * A Map that holds at most `maxEntries` entries, for in-process caches: setting a key makes it
 * the newest, and setting a new key when full first drops the oldest.
 */
export class BoundedMap<K, V> extends Map<K, V> {
  readonly #maxEntries: number;

  constructor(maxEntries: number) {
    super();
    if (!Number.isInteger(maxEntries) || maxEntries < 1)
      throw new Error('BoundedMap: maxEntries must be a positive integer');
    this.#maxEntries = maxEntries;
  }

  override set(key: K, value: V): this {
    super.delete(key);
    if (this.size >= this.#maxEntries) {
      const oldest = this.keys().next();
      if (!oldest.done) super.delete(oldest.value);
    }
    return super.set(key, value);
  }
}
