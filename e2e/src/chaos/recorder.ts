/** Every request the chaos suite makes, with what came back, and what in it is not clean. */

/** The codes the public contract lists (../shared/api/contract.graphql). */
export const CONTRACT_CODES = new Set([
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'BAD_USER_INPUT',
  'NOT_FOUND',
  'CONFLICT',
  'RATE_LIMITED',
  'QUERY_TOO_COMPLEX',
  'SERVICE_UNAVAILABLE',
  'INTERNAL_SERVER_ERROR',
]);

/** What an answer to a frontend must never contain: the internals of a failure. */
const LEAKS: [string, RegExp][] = [
  ['socket error code', /\bE(?:CONN\w+|PIPE|TIMEDOUT|NOTFOUND|HOSTUNREACH|NETUNREACH|AI_AGAIN)\b/],
  ['stack frame', /\bat\s+\S+\s+\([^)]*:\d+:\d+\)|\bat\s+\/\S+:\d+:\d+|\bat\s+node:/],
  ['file path', /\/work\/|node_modules|\bfile:\/\/|\.[cm]?[jt]s:\d+/],
  ['host or address', /\b127\.0\.0\.1\b|\blocalhost\b|\b(?:\d{1,3}\.){3}\d{1,3}\b|\[::1?\]/],
  ['port', /[a-z0-9\]]:\d{4,5}\b/i],
  [
    'SQL',
    /\b(?:SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\S+\s+SET|DELETE\s+FROM)\b|\brelation\s+"|\bcolumn\s+"/i,
  ],
  ['Prisma', /prisma|\bP[12]\d{3}\b|Invalid `.*` invocation/i],
  ['PostgreSQL', /postgres|\bpg[_-]|pg_hba|too many clients|terminating connection/i],
  [
    'Redis',
    /redis|Connection is closed|Stream isn't writeable|MaxRetriesPerRequest|enableOfflineQueue/i,
  ],
  ['RabbitMQ', /amqp|rabbit|channel (?:closed|ended)|Channel closed|connection closed/i],
  [
    'gRPC',
    /\bgrpc\b|\b\d{1,2} (?:UNAVAILABLE|DEADLINE_EXCEEDED|INTERNAL|UNKNOWN|CANCELLED):|No connection established|Waiting for LB pick/i,
  ],
  [
    'transport',
    /socket hang up|fetch failed|Client network socket|other side closed|UND_ERR|write after end/i,
  ],
  [
    'JavaScript error',
    /\b(?:TypeError|ReferenceError|SyntaxError|RangeError)\b|Cannot read propert|is not a function|undefined is not/,
  ],
];

/** The names of the leaks found in `text` (empty when clean). */
export function leaksIn(text: string): string[] {
  return LEAKS.filter(([, pattern]) => pattern.test(text)).map(([name]) => name);
}

export interface GraphQLError {
  message: string;
  extensions?: Record<string, unknown>;
}

export interface RequestRecord {
  seq: number;
  /** Epoch milliseconds. */
  start: number;
  end: number;
  /** `load` (the steady mix), `check` (an invariant's question) or `setup`. */
  source: 'load' | 'check' | 'setup';
  kind: string;
  /** Which gateway (instance) answered. */
  gateway: number;
  /** HTTP status; 0 when no answer came (network error or the client's timeout). */
  status: number;
  codes: string[];
  messages: string[];
  /** Reasons this answer breaks the contract's error rules, whatever the time. */
  unclean: string[];
}

export interface LiveEvent {
  at: number;
  subscriber: number;
  gateway: number;
  type: 'connected' | 'closed' | 'error' | 'result-error';
  code?: number;
  reason?: string;
  messages?: string[];
  /** The errors' extensions.code, for `error` and `result-error`. */
  codes?: string[];
  unclean: string[];
}

export interface Outcome<T> {
  ok: boolean;
  data: T | undefined;
  status: number;
  codes: string[];
  record: RequestRecord;
}

const REQUEST_TIMEOUT_MS = 15_000;

function errorsUnclean(status: number, errors: GraphQLError[]): string[] {
  const reasons: string[] = [];
  for (const error of errors) {
    const code = error.extensions?.['code'];
    if (typeof code !== 'string') reasons.push(`error without extensions.code: ${error.message}`);
    else if (!CONTRACT_CODES.has(code)) reasons.push(`code ${code} is not in the contract`);
    for (const leak of leaksIn(error.message)) reasons.push(`${leak} in message: ${error.message}`);
    const extensions = JSON.stringify(error.extensions ?? {});
    for (const key of ['stacktrace', 'exception', 'originalError'])
      if (error.extensions && key in error.extensions) reasons.push(`extensions.${key} present`);
    for (const leak of leaksIn(extensions)) reasons.push(`${leak} in extensions: ${extensions}`);
    if (code === 'SERVICE_UNAVAILABLE') {
      const retryAfter = error.extensions?.['retryAfter'];
      if (status !== 503) reasons.push(`SERVICE_UNAVAILABLE with HTTP ${status}, not 503`);
      if (typeof retryAfter !== 'number' || retryAfter <= 0)
        reasons.push(`SERVICE_UNAVAILABLE without a positive retryAfter (${String(retryAfter)})`);
    }
    if (status >= 500 && status !== 503 && code === 'SERVICE_UNAVAILABLE')
      reasons.push(`HTTP ${status} for SERVICE_UNAVAILABLE`);
  }
  if (
    status === 503 &&
    !errors.some((error) => error.extensions?.['code'] === 'SERVICE_UNAVAILABLE')
  )
    reasons.push(
      `HTTP 503 without SERVICE_UNAVAILABLE (${errors.map((e) => e.message).join('; ')})`,
    );
  return reasons;
}

export class Recorder {
  readonly requests: RequestRecord[] = [];
  readonly live: LiveEvent[] = [];
  private seq = 0;

  /** Posts an operation to a gateway as a frontend does, and records what happened. */
  async graphql<T>(
    meta: { source: RequestRecord['source']; kind: string; gateway: number },
    gatewayUrl: string,
    query: string,
    options: { variables?: Record<string, unknown>; token?: string } = {},
  ): Promise<Outcome<T>> {
    const record: RequestRecord = {
      seq: ++this.seq,
      start: Date.now(),
      end: 0,
      ...meta,
      status: 0,
      codes: [],
      messages: [],
      unclean: [],
    };
    this.requests.push(record);
    let data: T | undefined;
    try {
      const response = await fetch(`${gatewayUrl}/graphql`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        },
        body: JSON.stringify({ query, variables: options.variables }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      record.status = response.status;
      const text = await response.text();
      let body: { data?: T | null; errors?: GraphQLError[] } | undefined;
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        record.codes.push('NOT_JSON');
        record.messages.push(text.slice(0, 300));
        record.unclean.push(
          `HTTP ${response.status} with a body that is not JSON: ${text.slice(0, 200)}`,
        );
      }
      if (body) {
        data = body.data ?? undefined;
        const errors = body.errors ?? [];
        for (const error of errors) {
          const code = error.extensions?.['code'];
          record.codes.push(typeof code === 'string' ? code : 'NO_CODE');
          record.messages.push(error.message);
        }
        record.unclean.push(...errorsUnclean(response.status, errors));
      }
    } catch (error) {
      const timedOut = error instanceof Error && error.name === 'TimeoutError';
      record.codes.push(timedOut ? 'NO_ANSWER_IN_15S' : 'NO_ANSWER');
      record.messages.push(String(error));
      record.unclean.push(
        timedOut
          ? `no answer within ${REQUEST_TIMEOUT_MS} ms`
          : `connection failed: ${String(error)}`,
      );
    }
    record.end = Date.now();
    return {
      ok: record.status === 200 && record.codes.length === 0 && data !== undefined,
      data,
      status: record.status,
      codes: record.codes,
      record,
    };
  }

  liveEvent(event: Omit<LiveEvent, 'at' | 'unclean'>): void {
    const text = [event.reason ?? '', ...(event.messages ?? [])].join(' ');
    const unclean = leaksIn(text).map((leak) => `${leak} in live ${event.type}: ${text}`);
    for (const code of event.codes ?? [])
      if (!CONTRACT_CODES.has(code))
        unclean.push(`live ${event.type} with code ${code}, not one of the contract's: ${text}`);
    if (event.type === 'closed' && event.code === 1011)
      unclean.push(`live connection closed 1011 (internal error): ${event.reason ?? ''}`);
    this.live.push({ at: Date.now(), ...event, unclean });
  }
}
