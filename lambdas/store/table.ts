/**
 * The single Patchline table: key layout shared by every store, the CDK construct and the local runtime.
 * Every item has `pk` and `sk`; `gsi1pk`/`gsi1sk` index lists (campaigns, findings by status); `expiresAt` is the TTL.
 */
export const TableKeys = {
  PARTITION_KEY: 'pk',
  SORT_KEY: 'sk',
  GSI1: 'gsi1',
  GSI1_PARTITION_KEY: 'gsi1pk',
  GSI1_SORT_KEY: 'gsi1sk',
  TTL_ATTRIBUTE: 'expiresAt',
} as const;

/** Key prefixes: one per item family, so families never collide and each can be queried on its own. */
export const KeyPrefix = {
  IMAGE: 'IMG#',
  NODE: 'NODE',
  VERSION: 'V#',
  DESCENDANTS: 'DESC#',
  ANCESTORS: 'ANC#',
  FINDING: 'FND#',
  EXCEPTION: 'EXC#',
  CAMPAIGN: 'CMP#',
  SEMAPHORE: 'SEM#',
  ALERT: 'ALERT#',
  /** Write leases (`LEASE#lineage` / `LEASE`: one lineage writer at a time). */
  LEASE: 'LEASE#',
  /** Task tokens of rebuilds parked on a spoke build in another region (`RBLD#<build ARN>`), and each execution's build (`RBLD#<execution>`). */
  REMOTE_BUILD: 'RBLD#',
} as const;
