// Container healthcheck for the gRPC services: asks the standard grpc.health.v1 service at
// host:port (argv[2]) for the server's overall status. Exits 0 only when it answers SERVING;
// 1 when it answers anything else, fails or does not answer within 2 s; 2 on bad usage.
//
//   node scripts/grpc-healthcheck.mjs 127.0.0.1:50051
//
// Plain JavaScript so that it runs in the runtime image, which has no TypeScript tooling.
import { credentials, makeGenericClientConstructor } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';

const TIMEOUT_MS = 2_000;
const address = process.argv[2];

if (!address || !/^[\w.-]+:\d{1,5}$/.test(address)) {
  process.stderr.write('usage: node grpc-healthcheck.mjs <host:port>\n');
  process.exit(2);
}

const HealthClient = makeGenericClientConstructor(healthService, 'grpc.health.v1.Health');
const client = new HealthClient(address, credentials.createInsecure());

// A hard stop in case the channel hangs beyond the call's deadline.
const watchdog = setTimeout(() => {
  process.stderr.write(`${address}: no answer within ${TIMEOUT_MS} ms\n`);
  process.exit(1);
}, TIMEOUT_MS + 500);

client.check(
  { service: '' },
  { deadline: new Date(Date.now() + TIMEOUT_MS) },
  (error, response) => {
    clearTimeout(watchdog);
    client.close();
    // The loader keeps enums as strings; accept the numeric form too (SERVING = 1).
    const status = response?.status;
    if (!error && (status === 'SERVING' || status === 1)) process.exit(0);
    process.stderr.write(
      `${address}: ${error ? error.message : `status ${String(status ?? 'missing')}`}\n`,
    );
    process.exit(1);
  },
);
