/**
 * Mocha global fixtures: one standalone Redis and one local 3-master cluster for the
 * whole run, on free loopback ports, stopped again at the end. Tests reach them through
 * helpers/redis.ts and keep apart by a random key prefix each.
 */
import { config } from 'chai';
import { startLocalRedis, type LocalRedis } from '../lib/local-redis.js';

// A failure shows whole values: a worker's fatal message cut after 40 characters hides its cause.
config.truncateThreshold = 0;

let servers: LocalRedis[] = [];

export async function mochaGlobalSetup(): Promise<void> {
  const [standalone, cluster] = await Promise.all([startLocalRedis({ mode: 'standalone' }), startLocalRedis({ mode: 'cluster' })]);
  servers = [standalone, cluster];
  process.env.TG_TEST_STANDALONE_URL = standalone.url;
  process.env.TG_TEST_CLUSTER_URL = cluster.url;
}

export async function mochaGlobalTeardown(): Promise<void> {
  await Promise.all(servers.map((s) => s.stop()));
}
