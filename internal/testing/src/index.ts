export { createTestRun, type TestRun } from './test-run';
export { startApps, type AppCluster } from './app-cluster';
export { freePort } from '@platform/apps';
export { createTcpProxy, urlThrough, type TcpProxy } from './network';
export { eventually } from './eventually';
export { holdOpen, latch, type Held, type Latch } from './latch';
export { startTestSmtpServer, type ReceivedMail, type TestSmtpServer } from './smtp-server';
export { startRedisServer, type TestRedisServer } from './redis-server';
