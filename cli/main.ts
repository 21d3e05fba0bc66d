import { Command, CommanderError } from 'commander';
import { InvalidConfigError } from '../lambdas/domain/config';
import { InvalidImageReferenceError } from '../lambdas/domain/image-ref';
import { DuplicateImageError, ImageNotFoundError, LineageCycleError } from '../lambdas/domain/lineage';
import { LineageFileError } from '../lambdas/domain/lineage-file';
import { PolicyBlockedError, UsageError } from './cli-error';
import { campaignListCommand, campaignShowCommand } from './commands/campaign';
import { demoCommand } from './commands/demo';
import { exceptionAddCommand, exceptionListCommand, exceptionRemoveCommand } from './commands/exception';
import { gateCommand } from './commands/gate';
import { lineageImportCommand, lineageScanCommand, lineageShowCommand } from './commands/lineage';
import { lineageUnownedCommand } from './commands/unowned';
import { planCommand } from './commands/plan';
import { reportCommand } from './commands/report';
import { simulateCommand } from './commands/simulate';

/** What a command prints, and whether it failed (a non-zero exit without an exception, e.g. a partial scan). */
type CommandOutput = string | { output: string; failed: boolean };

interface CommandSpec {
  readonly name: string;
  readonly description: string;
  readonly args?: readonly string[];
  readonly options?: ReadonlyArray<{ flags: string; description: string; default?: string | boolean; repeatable?: boolean }>;
  readonly run: (args: string[], options: Record<string, unknown>) => Promise<CommandOutput>;
}

const TABLE_OPTION = { flags: '--table <name>', description: 'use this DynamoDB table (AWS credentials) instead of the embedded store under .patchline/' };
const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** Every command, declared once: the parser and the help come from this table. */
export const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'lineage import',
    description: 'store a lineage: a YAML/JSON images file, or TSV child<TAB>parent edges',
    args: ['<file>'],
    options: [
      TABLE_OPTION,
      { flags: '--no-progress', description: 'no progress bar' },
      { flags: '--config <file>', description: 'Patchline config: with an organization, hub images named by their qualified key are stored under their bare key' },
    ],
    run: ([file], o) => lineageImportCommand(file, { table: o.table as string | undefined, progress: o.progress as boolean, config: o.config as string | undefined }),
  },
  {
    name: 'lineage show',
    description: 'the images above and the tree below an image, with tiers and owners',
    args: ['<image>'],
    options: [TABLE_OPTION, { flags: '--lineage <file>', description: 'read the lineage from this file instead of the store' }],
    run: ([image], o) => lineageShowCommand(image, { table: o.table as string | undefined, lineage: o.lineage as string | undefined }),
  },
  {
    name: 'lineage scan',
    description: 'learn parents from the Dockerfiles/Containerfiles under a directory and store them',
    args: ['<dir>'],
    options: [
      TABLE_OPTION,
      { flags: '--dry-run', description: 'print what was found, store nothing' },
      { flags: '--build-arg <name=value>', description: 'ARG value for FROM lines (repeatable)', repeatable: true },
    ],
    run: ([dir], o) => lineageScanCommand(dir, { table: o.table as string | undefined, dryRun: Boolean(o.dryRun), buildArg: o.buildArg as string[] | undefined }),
  },
  {
    name: 'lineage unowned',
    description: 'the images without an owner, with their tier and where they were learned from',
    options: [TABLE_OPTION, { flags: '--all', description: 'include external (upstream) images' }, { flags: '--json', description: 'print [{"image", "tier", "learnedFrom", "notes"}]' }],
    run: (_args, o) => lineageUnownedCommand({ table: o.table as string | undefined, all: Boolean(o.all), json: Boolean(o.json) }),
  },
  {
    name: 'plan',
    description: 'every image downstream of IMAGE, in a valid build order, each with its parents',
    args: ['<image>'],
    options: [TABLE_OPTION, { flags: '--lineage <file>', description: 'plan on this lineage file instead of the store' }, { flags: '--json', description: 'print {"root", "rebuild": [{"image", "parents"}]}' }],
    run: ([image], o) => planCommand(image, { lineage: o.lineage as string | undefined, json: Boolean(o.json), table: o.table as string | undefined }),
  },
  {
    name: 'simulate',
    description: 'run the real workflows locally on an event (or a JSON array of events) until quiet',
    options: [
      { flags: '--event <file>', description: 'the EventBridge event (JSON)' },
      { flags: '--lineage <file>', description: 'lineage loaded into the fresh store', default: 'examples/lineage.yaml' },
      { flags: '--config <file>', description: 'Patchline config', default: 'patchline.config.json' },
      { flags: '--json', description: 'print {"builds", "alerts", "executions", "deadLetters"}' },
      { flags: '--fail-project <project>', description: 'builds of this CodeBuild project fail (repeatable)', repeatable: true },
      { flags: '--throttle <project=n>', description: 'refuse the first n StartBuild calls of a project as throttled (repeatable)', repeatable: true },
      { flags: '--concurrency <n>', description: 'override rebuild.concurrency' },
    ],
    run: async (_args, o) => {
      if (!o.event) throw new UsageError('simulate needs --event FILE');
      return simulateCommand({
        event: o.event as string,
        lineage: o.lineage as string,
        config: o.config as string,
        json: Boolean(o.json),
        failProject: o.failProject as string[] | undefined,
        throttle: o.throttle as string[] | undefined,
        concurrency: o.concurrency as string | undefined,
      });
    },
  },
  {
    name: 'campaign list',
    description: 'the latest rebuild campaigns, newest first',
    options: [TABLE_OPTION, { flags: '--limit <n>', description: 'how many', default: '50' }],
    run: (_args, o) => campaignListCommand({ table: o.table as string | undefined, limit: o.limit as string }),
  },
  {
    name: 'campaign show',
    description: 'a campaign as a timeline: the trigger and, for each image, the chain of parents that carried it',
    args: ['<id>'],
    options: [TABLE_OPTION],
    run: ([id], o) => campaignShowCommand(id, { table: o.table as string | undefined }),
  },
  {
    name: 'report',
    description: 'the posture per owner and for the organization: open findings, oldest unpatched, drift, exceptions, campaigns, MTTR',
    options: [TABLE_OPTION, { flags: '--format <format>', description: 'md, json or html', default: 'md' }, { flags: '--from <file>', description: 'a posture snapshot file (examples/posture.json) instead of the store' }],
    run: (_args, o) => reportCommand({ format: o.format as string, from: o.from as string | undefined, table: o.table as string | undefined }),
  },
  {
    name: 'demo',
    description: "the seed scenario on embedded emulators: a patched enterprise image cascades to everything built from it",
    run: () => demoCommand(),
  },
  {
    name: 'gate',
    description: 'exit 1 when stored findings of the image digest break the policy (a CodeBuild step before publishing)',
    args: ['<image>'],
    options: [
      TABLE_OPTION,
      { flags: '--digest <digest>', description: 'the digest to check (default: the one in IMAGE, else its current version)' },
      { flags: '--policy <file>', description: 'policy JSON (severityThreshold, requireFixAvailable, exceptions, trustedBases)' },
      { flags: '--config <file>', description: 'Patchline config (the policy when --policy is not given)', default: 'patchline.config.json' },
    ],
    run: ([image], o) => gateCommand(image, { digest: o.digest as string | undefined, policy: o.policy as string | undefined, config: o.config as string, table: o.table as string | undefined }),
  },
  {
    name: 'exception add',
    description: 'approve an exception: a CVE on an image (or image pattern) until an expiry',
    options: [
      TABLE_OPTION,
      { flags: '--image <pattern>', description: 'image key or glob (apps/*, apps/**)' },
      { flags: '--cve <id>', description: 'vulnerability id' },
      { flags: '--reason <text>', description: 'why it is accepted' },
      { flags: '--approver <name>', description: 'who approved it' },
      { flags: '--expires <date-time>', description: 'ISO 8601 expiry (2025-06-30T00:00:00Z)' },
    ],
    run: (_args, o) => {
      const missing = ['image', 'cve', 'reason', 'approver', 'expires'].filter((k) => typeof o[k] !== 'string');
      if (missing.length > 0) throw new UsageError(`exception add needs ${missing.map((k) => `--${k}`).join(', ')}`);
      return exceptionAddCommand({ image: o.image as string, vulnerability: o.cve as string, reason: o.reason as string, approver: o.approver as string, expires: o.expires as string, table: o.table as string | undefined });
    },
  },
  {
    name: 'exception list',
    description: 'every exception, active or expired',
    options: [TABLE_OPTION, { flags: '--json', description: 'print a JSON array' }],
    run: (_args, o) => exceptionListCommand({ json: Boolean(o.json), table: o.table as string | undefined }),
  },
  {
    name: 'exception remove',
    description: 'withdraw an exception',
    options: [TABLE_OPTION, { flags: '--image <pattern>', description: 'image key or glob' }, { flags: '--cve <id>', description: 'vulnerability id' }],
    run: (_args, o) => {
      if (typeof o.image !== 'string' || typeof o.cve !== 'string') throw new UsageError('exception remove needs --image and --cve');
      return exceptionRemoveCommand({ image: o.image, vulnerability: o.cve, table: o.table as string | undefined });
    },
  },
];

/** User errors carry a code and print without a stack; anything else is a bug and prints its stack with --debug. */
function exitCodeFor(error: unknown): number {
  if (error instanceof PolicyBlockedError) return 1;
  if (
    error instanceof UsageError ||
    error instanceof InvalidConfigError ||
    error instanceof LineageFileError ||
    error instanceof LineageCycleError ||
    error instanceof DuplicateImageError ||
    error instanceof ImageNotFoundError ||
    error instanceof InvalidImageReferenceError
  ) {
    return 2;
  }
  return 1;
}

export async function runCli(argv: readonly string[], out: (text: string) => void = (t) => process.stdout.write(`${t}\n`)): Promise<number> {
  const debug = argv.includes('--debug');
  const program = new Command('patchline')
    .description('Keeps container images patched along their lineage (see README.md)')
    .option('--debug', 'print stack traces')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  const groups = new Map<string, Command>();
  let result: CommandOutput | undefined;
  for (const spec of COMMANDS) {
    const words = spec.name.split(' ');
    let parent = program;
    if (words.length === 2) {
      if (!groups.has(words[0])) groups.set(words[0], program.command(words[0]).description(`${words[0]} commands`));
      parent = groups.get(words[0])!;
    }
    const command = parent.command(words[words.length - 1]).description(spec.description);
    for (const arg of spec.args ?? []) command.argument(arg);
    for (const opt of spec.options ?? []) {
      if (opt.repeatable) command.option(opt.flags, opt.description, collect);
      else if (opt.default !== undefined) command.option(opt.flags, opt.description, opt.default as string);
      else command.option(opt.flags, opt.description);
    }
    command.action(async (...params: unknown[]) => {
      const args = params.slice(0, (spec.args ?? []).length) as string[];
      const options = (params[(spec.args ?? []).length] ?? {}) as Record<string, unknown>;
      result = await spec.run(args, options);
    });
  }
  try {
    await program.parseAsync(argv.filter((a) => a !== '--debug'), { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    const code = exitCodeFor(error);
    process.stderr.write(`patchline: ${(error as Error).message}\n`);
    if (debug || code === 1) {
      if (debug) process.stderr.write(`${(error as Error).stack}\n`);
    }
    return code;
  }
  if (result === undefined) return 0;
  if (typeof result === 'string') {
    out(result);
    return 0;
  }
  out(result.output);
  return result.failed ? 1 : 0;
}
