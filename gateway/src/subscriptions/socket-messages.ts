/**
 * Passes results on while the client keeps up: once more than `maxBufferedBytes` wait unsent
 * on its socket, calls `tooSlow` (which closes it) and stops, instead of buffering more.
 */
export async function* unlessTooSlow<T>(
  results: AsyncIterable<T>,
  socket: { readonly bufferedAmount: number },
  maxBufferedBytes: number,
  tooSlow: () => void,
): AsyncGenerator<T> {
  for await (const result of results) {
    if (socket.bufferedAmount > maxBufferedBytes) {
      tooSlow();
      return;
    }
    yield result;
  }
}

export const byteLength = (data: Buffer | ArrayBuffer | Buffer[]): number =>
  Array.isArray(data) ? data.reduce((sum, part) => sum + part.length, 0) : data.byteLength;

/** The id of a graphql-ws `complete` message; undefined for any other message. */
export function completedId(data: Buffer | ArrayBuffer | Buffer[]): string | undefined {
  const text = Buffer.isBuffer(data)
    ? data.toString('utf8')
    : Array.isArray(data)
      ? Buffer.concat(data).toString('utf8')
      : Buffer.from(data).toString('utf8');
  if (!text.includes('"complete"')) return undefined;
  try {
    const message = JSON.parse(text) as { type?: unknown; id?: unknown };
    return message.type === 'complete' && typeof message.id === 'string' ? message.id : undefined;
  } catch {
    return undefined;
  }
}
