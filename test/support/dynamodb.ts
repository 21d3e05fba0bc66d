import { createPatchlineTable, DynamoDbEmulator, startDynamoDbEmulator } from '../../cli/local/dynamodb-emulator';

/** A dynalite emulator with a fresh Patchline table per call; stop it in afterAll. */
export async function startTestTable(tableName = 'patchline-test'): Promise<DynamoDbEmulator & { tableName: string }> {
  const emulator = await startDynamoDbEmulator();
  await createPatchlineTable(emulator.client, tableName);
  return Object.assign(emulator, { tableName });
}
