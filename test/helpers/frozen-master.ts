/** A cluster master frozen (SIGSTOP: its connections stay open, nothing on them is answered) and its replica made to take over. */
import { Redis, type Cluster } from 'ioredis';
import { loadConfig } from '../../lib/config.js';
import { startLocalRedis, type LocalRedisNode } from '../../lib/local-redis.js';
import { connect, detectTarget, type RedisClient } from '../../lib/redis.js';
import { waitFor } from './redis.js';

export interface FrozenMaster {
  /** As a stopping worker's client: no slot-map refresh on a timer, no topology reads; commands time out after the case's timeout. */
  redis: RedisClient;
  /** The master to freeze, as created. */
  master: LocalRedisNode;
  /** Waits until what the master has written reached its replica (WAIT). */
  replicated(): Promise<void>;
  freeze(): void;
  /** CLUSTER FAILOVER TAKEOVER on its replica, until the replica says it is a master. */
  promote(): Promise<void>;
}

/** On a cluster of its own, a replica for each master, `body` may freeze the master serving `slot` and have its replica take over. */
export async function withFrozenMaster(slot: number, commandTimeoutMs: number, body: (frozen: FrozenMaster) => Promise<void>): Promise<void> {
  const servers = await startLocalRedis({ mode: 'cluster', replicas: 1 });
  const redis = connect(await detectTarget(loadConfig({ TG_REDIS_URL: servers.url }, []).redis), { periodicSlotsRefresh: false, autoPipelining: false, commandTimeoutMs });
  redis.on('error', () => undefined);
  const conns: Redis[] = [];
  let stopped: number | undefined;
  try {
    const master = await servers.masterOf(slot);
    let replica: { node: LocalRedisNode; conn: Redis } | undefined;
    for (const node of servers.nodes.filter((n) => n !== master)) {
      const conn = new Redis({ host: '127.0.0.1', port: node.port });
      conns.push(conn);
      const [role, , masterPort] = (await conn.role()) as [string, string, number];
      if (role === 'slave' && Number(masterPort) === master.port) replica = { node, conn };
    }
    if (replica === undefined) throw new Error(`no replica of ${master.port} among the launcher's servers`);
    const { node, conn } = replica;
    await body({
      redis,
      master,
      replicated: async () => {
        const on = (redis as Cluster).nodes('master').find((n) => n.options.port === master.port);
        if (on === undefined || (await on.wait(1, 5000)) < 1) throw new Error(`${master.port}: its writes did not reach its replica within 5 s`);
      },
      freeze: () => {
        stopped = master.pid!;
        process.kill(stopped, 'SIGSTOP');
      },
      promote: async () => {
        await conn.cluster('FAILOVER', 'TAKEOVER');
        await waitFor(async () => (await node.role()) === 'master', { timeoutMs: 10000, what: 'the replica promoted' });
      },
    });
  } finally {
    if (stopped !== undefined) process.kill(stopped, 'SIGCONT');
    conns.forEach((c) => c.disconnect());
    redis.disconnect();
    await servers.stop();
  }
}
