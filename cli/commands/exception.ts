import { ExceptionStore, InvalidExceptionError, StoredException } from '../../lambdas/store/finding-store';
import { UsageError } from '../cli-error';
import { openStore } from '../store-session';

export interface ExceptionAddOptions {
  readonly image: string;
  readonly vulnerability: string;
  readonly reason: string;
  readonly approver: string;
  readonly expires: string;
  readonly table?: string;
}

async function withStore<T>(table: string | undefined, action: (store: ExceptionStore) => Promise<T>): Promise<T> {
  const session = await openStore({ table });
  try {
    return await action(new ExceptionStore({ client: session.client, tableName: session.tableName }));
  } finally {
    await session.close();
  }
}

/** Records an approved exception (image or pattern, CVE, reason, approver, expiry); it stops applying at its expiry. */
export async function exceptionAddCommand(options: ExceptionAddOptions): Promise<string> {
  return withStore(options.table, async (store) => {
    try {
      const added = await store.add({
        image: options.image,
        vulnerabilityId: options.vulnerability,
        reason: options.reason,
        approver: options.approver,
        expiresAt: options.expires,
      });
      return `exception added: ${added.vulnerabilityId} on ${added.image} until ${added.expiresAt} (approved by ${added.approver})`;
    } catch (error) {
      if (error instanceof InvalidExceptionError) throw new UsageError(error.message, { cause: error });
      throw error;
    }
  });
}

export async function exceptionListCommand(options: { json?: boolean; table?: string; now?: Date }): Promise<string> {
  const exceptions = await withStore(options.table, (store) => store.list());
  if (options.json) return JSON.stringify(exceptions);
  if (exceptions.length === 0) return 'no exceptions';
  const now = (options.now ?? new Date()).getTime();
  const state = (e: StoredException): string => (Date.parse(e.expiresAt) > now ? 'active ' : 'EXPIRED');
  return exceptions.map((e) => `${state(e)}  ${e.vulnerabilityId}  ${e.image}  until ${e.expiresAt}  by ${e.approver}: ${e.reason}`).join('\n');
}

export async function exceptionRemoveCommand(options: { image: string; vulnerability: string; table?: string }): Promise<string> {
  const removed = await withStore(options.table, (store) => store.remove(options.vulnerability, options.image));
  if (!removed) throw new UsageError(`no exception for ${options.vulnerability} on ${options.image}`);
  return `exception removed: ${options.vulnerability} on ${options.image}`;
}
