/**
 * The external parents of a Dockerfile (or Containerfile), resolved the way BuildKit resolves them:
 * ARGs declared before the first FROM are substituted in FROM, build args override their defaults,
 * stage aliases and indexes are followed back to the image they start from.
 */
import { Arg, Copy, DockerfileParser, From, Instruction, Run } from 'dockerfile-ast';
import { InvalidImageReferenceError, parseImageRef } from './image-ref';
import { ParentEdge, ParentRole, resolveParentKey } from './lineage';

/** How a Dockerfile names an external image. */
export const ParentVia = { FROM: 'FROM', COPY_FROM: 'COPY --from', RUN_MOUNT: 'RUN --mount' } as const;
export type ParentVia = (typeof ParentVia)[keyof typeof ParentVia];

/**
 * ARGs BuildKit defines in the global scope without a declaration. Their values depend on the machine that builds, so
 * they resolve only when given in `buildArgs`.
 */
export const AUTOMATIC_PLATFORM_ARGS: readonly string[] = [
  'BUILDPLATFORM',
  'BUILDOS',
  'BUILDARCH',
  'BUILDVARIANT',
  'TARGETPLATFORM',
  'TARGETOS',
  'TARGETARCH',
  'TARGETVARIANT',
];

const SCRATCH = 'scratch';
const DEFAULT_FILE = 'Dockerfile';

export interface DockerfileParent {
  /** The reference as written, after ARG substitution (`nginx:mainline`). */
  readonly reference: string;
  /** The image key (`python:3.11`; a digest-only pin keeps its digest). */
  readonly image: string;
  readonly digest?: string;
  readonly role: ParentRole;
  /** 1-based line of the instruction. */
  readonly line: number;
  /** The FROM's `--platform` value after substitution; information only, never part of the reference. */
  readonly platform?: string;
  readonly via: ParentVia;
  /** Index of the stage whose instruction names the image. */
  readonly stage: number;
}

/** What a stage starts from. */
export type StageBase =
  | { readonly kind: 'image'; readonly image: string }
  | { readonly kind: 'stage'; readonly stage: number }
  | { readonly kind: 'scratch' };

export interface DockerfileStage {
  readonly index: number;
  /** The `AS` alias, lowercased as BuildKit compares it. */
  readonly name?: string;
  readonly line: number;
  readonly platform?: string;
  readonly base: StageBase;
}

export interface DockerfileFinalStage {
  readonly index: number;
  readonly name?: string;
  readonly line: number;
  /** Image key of the runtime parent; absent when the stage chain ends at `scratch`. */
  readonly runtime?: string;
  readonly scratch: boolean;
}

export interface DockerfileParents {
  readonly file: string;
  /** Every use of an external image, in file order. */
  readonly parents: readonly DockerfileParent[];
  /** One edge per image key, the runtime parent first; an image used both ways is a runtime parent. */
  readonly edges: readonly ParentEdge[];
  readonly stages: readonly DockerfileStage[];
  readonly finalStage: DockerfileFinalStage;
}

export interface ParseDockerfileOptions {
  /** Shown in error messages and returned. @default 'Dockerfile' */
  readonly file?: string;
  /** `--build-arg` values; they win over ARG defaults. @default - none */
  readonly buildArgs?: Readonly<Record<string, string>>;
  /** `--target`: the stage that is the image. @default - the last stage */
  readonly target?: string;
  /** Passed to resolveParentKey, so an internal repository keys as its repository name. @default - all external */
  readonly isInternal?: (repository: string) => boolean;
}

function at(file: string, line: number): string {
  return `${file}:${line}`;
}

export class DockerfileNoFromError extends Error {
  public readonly code = 'DOCKERFILE_NO_FROM';
  public constructor(public readonly file: string, options?: { cause?: unknown }) {
    super(`${file}: no FROM instruction, so the Dockerfile names no base image`, options);
    this.name = 'DockerfileNoFromError';
  }
}

export class DockerfileUnknownArgError extends Error {
  public readonly code = 'DOCKERFILE_UNKNOWN_ARG';
  public constructor(
    public readonly file: string,
    public readonly line: number,
    public readonly variable: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${at(file, line)}: ARG ${variable} ${reason}`, options);
    this.name = 'DockerfileUnknownArgError';
  }
}

export class DockerfileInvalidReferenceError extends Error {
  public readonly code = 'DOCKERFILE_INVALID_REFERENCE';
  public constructor(
    public readonly file: string,
    public readonly line: number,
    public readonly reference: string,
    options: { cause: InvalidImageReferenceError },
  ) {
    super(`${at(file, line)}: ${options.cause.message}`, options);
    this.name = 'DockerfileInvalidReferenceError';
  }
}

/** A FROM without an image, or with words other than `image [AS name]`; an unsupported `${…}` form. */
export class DockerfileSyntaxError extends Error {
  public readonly code = 'DOCKERFILE_SYNTAX';
  public constructor(public readonly file: string, public readonly line: number, reason: string, options?: { cause?: unknown }) {
    super(`${at(file, line)}: ${reason}`, options);
    this.name = 'DockerfileSyntaxError';
  }
}

/** `COPY --from=<n>` with no stage n before it, or a stage that names itself. */
export class DockerfileStageReferenceError extends Error {
  public readonly code = 'DOCKERFILE_STAGE_REFERENCE';
  public constructor(public readonly file: string, public readonly line: number, reason: string, options?: { cause?: unknown }) {
    super(`${at(file, line)}: ${reason}`, options);
    this.name = 'DockerfileStageReferenceError';
  }
}

export class DockerfileUnknownTargetError extends Error {
  public readonly code = 'DOCKERFILE_UNKNOWN_TARGET';
  public constructor(public readonly file: string, public readonly target: string, stages: readonly string[], options?: { cause?: unknown }) {
    super(`${file}: target stage ${JSON.stringify(target)} is not defined (stages: ${stages.join(', ') || 'none named'})`, options);
    this.name = 'DockerfileUnknownTargetError';
  }
}

/** A variable scope: a name maps to its value, or to undefined when declared without one. */
type Scope = ReadonlyMap<string, string | undefined>;

/** How an unset `$VAR` is treated: FROM refuses it; ARG defaults and flags read it as empty, as Docker does. */
type OnUnset = (name: string) => string;

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;

/**
 * Substitutes `$VAR`, `${VAR}`, `${VAR:-w}`, `${VAR-w}`, `${VAR:+w}`, `${VAR+w}`, `${VAR:?msg}`, `${VAR?msg}` after the
 * rules of BuildKit's shell lexer. The word of a modifier is expanded only when it is used, so a default that names an
 * unset variable is not an error when the variable it stands in for is set.
 */
class WordExpander {
  private pos = 0;

  public constructor(
    private readonly text: string,
    private readonly scope: Scope,
    private readonly escapeChar: string,
    private readonly onUnset: OnUnset,
    private readonly fail: (reason: string) => never,
  ) {}

  public expand(): string {
    return this.word(false, true);
  }

  /** Reads up to the end (or up to the `}` closing a modifier when `inBraces`), expanding when `evaluate`. */
  private word(inBraces: boolean, evaluate: boolean): string {
    let out = '';
    let quote: '"' | "'" | undefined;
    while (this.pos < this.text.length) {
      const c = this.text[this.pos];
      if (inBraces && !quote && c === '}') return out;
      if (c === this.escapeChar && quote !== "'" && this.pos + 1 < this.text.length) {
        out += this.text[this.pos + 1];
        this.pos += 2;
      } else if ((c === '"' || c === "'") && (!quote || quote === c)) {
        quote = quote ? undefined : c;
        this.pos += 1;
      } else if (c === '$' && quote !== "'") {
        out += this.variable(evaluate);
      } else {
        out += c;
        this.pos += 1;
      }
    }
    if (inBraces) this.fail(`unterminated \${…} in ${JSON.stringify(this.text)}`);
    if (quote) this.fail(`unterminated ${quote} quote in ${JSON.stringify(this.text)}`);
    return out;
  }

  private name(): string {
    const start = this.pos;
    if (this.pos < this.text.length && NAME_START.test(this.text[this.pos])) {
      this.pos += 1;
      while (this.pos < this.text.length && NAME_CHAR.test(this.text[this.pos])) this.pos += 1;
    }
    return this.text.slice(start, this.pos);
  }

  private lookup(name: string, evaluate: boolean): string | undefined {
    if (!evaluate) return '';
    return this.scope.get(name);
  }

  private variable(evaluate: boolean): string {
    this.pos += 1; // '$'
    if (this.text[this.pos] !== '{') {
      const name = this.name();
      if (!name) return '$'; // a lone '$' is literal
      const value = this.lookup(name, evaluate);
      return value ?? this.onUnset(name);
    }
    this.pos += 1; // '{'
    const name = this.name();
    if (!name) this.fail(`bad substitution in ${JSON.stringify(this.text)}: \${ must be followed by a variable name`);
    if (this.text[this.pos] === '}') {
      this.pos += 1;
      const value = this.lookup(name, evaluate);
      return value ?? this.onUnset(name);
    }
    const colon = this.text[this.pos] === ':';
    if (colon) this.pos += 1;
    if (this.pos >= this.text.length) this.fail(`unterminated \${…} in ${JSON.stringify(this.text)}`);
    const op = this.text[this.pos];
    if (op !== '-' && op !== '+' && op !== '?') {
      this.fail(`unsupported substitution \${${name}${colon ? ':' : ''}${op ?? ''}…} in ${JSON.stringify(this.text)}; use :-, -, :+, +, :? or ?`);
    }
    this.pos += 1;
    const value = evaluate ? this.scope.get(name) : '';
    // With ':', an empty value counts as unset (POSIX).
    const isSet = value !== undefined && (!colon || value !== '');
    // The word of ':?' is a message, never expanded.
    const useWord = op === '-' ? !isSet : op === '+' ? isSet : false;
    const word = this.word(true, evaluate && useWord);
    this.pos += 1; // '}'
    if (!evaluate) return '';
    if (op === '-') return isSet ? value! : word;
    if (op === '+') return isSet ? word : '';
    if (!isSet) {
      this.onUnset(name);
      this.fail(`\${${name}${colon ? ':' : ''}?${word}}: ${name} is ${value === undefined ? 'unset' : 'empty'}`);
    }
    return value!;
  }
}

function expandWord(text: string, scope: Scope, escapeChar: string, onUnset: OnUnset, fail: (reason: string) => never): string {
  return new WordExpander(text, scope, escapeChar, onUnset, fail).expand();
}

interface ImageUse {
  readonly reference: string;
  readonly line: number;
  readonly via: ParentVia;
  readonly stage: number;
  readonly platform?: string;
  /** True for the FROM that starts a stage, which may be on the runtime chain. */
  readonly fromLine: boolean;
}

/** Parses a Dockerfile into the external images it is built from, each marked runtime (final stage) or build. */
export function parseDockerfileParents(text: string, options: ParseDockerfileOptions = {}): DockerfileParents {
  const file = options.file ?? DEFAULT_FILE;
  const buildArgs = options.buildArgs ?? {};
  const isInternal = options.isInternal ?? (() => false);
  const dockerfile = DockerfileParser.parse(text);
  const escapeChar = dockerfile.getEscapeCharacter();
  const instructions = dockerfile.getInstructions();
  const syntax = (line: number) => (reason: string): never => {
    throw new DockerfileSyntaxError(file, line, reason);
  };
  const lineOf = (instruction: Instruction) => instruction.getRange().start.line + 1;

  // Meta ARGs: those before the first FROM, the only ones a FROM can use.
  const meta = new Map<string, string | undefined>();
  for (const name of AUTOMATIC_PLATFORM_ARGS) meta.set(name, buildArgs[name]);
  const firstFrom = instructions.findIndex((i) => i instanceof From);
  if (firstFrom < 0) throw new DockerfileNoFromError(file);
  for (const instruction of instructions.slice(0, firstFrom)) {
    if (instruction instanceof Arg) declareArgs(instruction, meta, meta, buildArgs, escapeChar, syntax(lineOf(instruction)));
  }

  const stages: DockerfileStage[] = [];
  const uses: ImageUse[] = [];
  const stageIndexByName = new Map<string, number>();
  // Stage names are collected up front: `COPY --from` may name any stage, a FROM only an earlier one.
  const allStageNames = new Map<string, number>();
  let stageCount = 0;
  for (const instruction of instructions) {
    if (!(instruction instanceof From)) continue;
    const words = instruction.getArguments().map((a) => a.getValue());
    if (words.length === 3 && words[1].toLowerCase() === 'as' && !allStageNames.has(words[2].toLowerCase())) {
      allStageNames.set(words[2].toLowerCase(), stageCount);
    }
    stageCount += 1;
  }

  let stageScope = new Map<string, string | undefined>();
  for (const instruction of instructions.slice(firstFrom)) {
    const line = lineOf(instruction);
    const fail = syntax(line);
    const current = stages.length - 1;
    if (instruction instanceof From) {
      const words = instruction.getArguments().map((a) => a.getValue());
      if (words.length === 0) fail('FROM names no image');
      if (words.length !== 1 && !(words.length === 3 && words[1].toLowerCase() === 'as')) {
        fail(`FROM takes "image [AS name]", got ${JSON.stringify(words.join(' '))}`);
      }
      const strict: OnUnset = (name) => {
        throw unknownArg(file, line, name, meta, buildArgs);
      };
      const reference = expandWord(words[0], meta, escapeChar, strict, fail);
      if (reference === '') fail(`FROM ${words[0]} expands to an empty image name`);
      const platformFlag = instruction.getFlags().find((f) => f.getName() === 'platform')?.getValue() ?? undefined;
      const platform = platformFlag === undefined ? undefined : expandLenient(platformFlag, meta, escapeChar, fail);
      const name = words.length === 3 ? words[2].toLowerCase() : undefined;
      const index = stages.length;
      const earlier = stageIndexByName.get(reference.toLowerCase());
      let base: StageBase;
      if (reference.toLowerCase() === SCRATCH) {
        base = { kind: 'scratch' };
      } else if (earlier !== undefined) {
        base = { kind: 'stage', stage: earlier };
      } else {
        base = { kind: 'image', image: imageKeyAt(reference, file, line, isInternal) };
        uses.push({ reference, line, via: ParentVia.FROM, stage: index, platform, fromLine: true });
      }
      stages.push({ index, name, line, platform, base });
      if (name !== undefined && !stageIndexByName.has(name)) stageIndexByName.set(name, index);
      stageScope = new Map();
    } else if (instruction instanceof Arg) {
      declareArgs(instruction, stageScope, meta, buildArgs, escapeChar, fail);
    } else if (instruction instanceof Copy || instruction instanceof Run) {
      for (const source of fromSources(instruction)) {
        const strict: OnUnset = (name) => {
          throw unknownArg(file, line, name, stageScope, buildArgs);
        };
        const value = expandWord(source.value, stageScope, escapeChar, strict, fail);
        const stage = resolveStageReference(value, current, allStageNames, file, line);
        if (stage === undefined && value.toLowerCase() !== SCRATCH) {
          imageKeyAt(value, file, line, isInternal); // validated here, keyed below
          uses.push({ reference: value, line, via: source.via, stage: current, fromLine: false });
        }
      }
    }
  }

  const finalIndex = selectTarget(options.target, stages, file);
  const finalStage = stages[finalIndex];
  // Follow the final stage's FROM chain back to where it starts: an image, or scratch.
  let cursor = finalStage;
  while (cursor.base.kind === 'stage') cursor = stages[cursor.base.stage];
  const runtimeStage = cursor.base.kind === 'image' ? cursor.index : undefined;

  const parents: DockerfileParent[] = uses.map((use) => {
    const ref = parseImageRef(use.reference);
    const image = imageKeyAt(use.reference, file, use.line, isInternal);
    const role = use.fromLine && use.stage === runtimeStage ? ParentRole.RUNTIME : ParentRole.BUILD;
    return {
      reference: use.reference,
      image,
      ...(ref.digest ? { digest: ref.digest } : {}),
      role,
      line: use.line,
      ...(use.platform !== undefined ? { platform: use.platform } : {}),
      via: use.via,
      stage: use.stage,
    };
  });

  const runtime = parents.find((p) => p.role === ParentRole.RUNTIME);
  const edges: ParentEdge[] = runtime ? [{ image: runtime.image, role: ParentRole.RUNTIME }] : [];
  for (const parent of parents) {
    if (!edges.some((e) => e.image === parent.image)) edges.push({ image: parent.image, role: ParentRole.BUILD });
  }

  return {
    file,
    parents,
    edges,
    stages,
    finalStage: {
      index: finalStage.index,
      ...(finalStage.name !== undefined ? { name: finalStage.name } : {}),
      line: finalStage.line,
      ...(runtime ? { runtime: runtime.image } : {}),
      scratch: runtime === undefined,
    },
  };
}

/** `ARG A=1 B`: a build arg wins over the default; a bare ARG inside a stage takes the meta ARG's value. */
function declareArgs(
  instruction: Arg,
  scope: Map<string, string | undefined>,
  meta: Scope,
  buildArgs: Readonly<Record<string, string>>,
  escapeChar: string,
  fail: (reason: string) => never,
): void {
  for (const property of instruction.getProperties()) {
    const name = property.getName();
    const raw = property.getValue();
    let value: string | undefined;
    if (Object.hasOwn(buildArgs, name)) value = buildArgs[name];
    else if (raw !== null) value = expandLenient(raw, scope, escapeChar, fail);
    else if (scope !== meta) value = meta.get(name);
    else if (scope.has(name)) continue; // a bare re-declaration keeps the value
    scope.set(name, value);
  }
}

/** Docker reads an unset variable as empty outside FROM; the ARG value getValue() returns is already unquoted. */
function expandLenient(text: string, scope: Scope, escapeChar: string, fail: (reason: string) => never): string {
  return expandWord(text, scope, escapeChar, () => '', fail);
}

function unknownArg(
  file: string,
  line: number,
  name: string,
  scope: Scope,
  buildArgs: Readonly<Record<string, string>>,
): DockerfileUnknownArgError {
  if (AUTOMATIC_PLATFORM_ARGS.includes(name)) {
    return new DockerfileUnknownArgError(file, line, name, 'is set by BuildKit from the build platform; give its value in buildArgs');
  }
  if (scope.has(name)) {
    return new DockerfileUnknownArgError(file, line, name, 'is declared without a default and no build arg gives it a value');
  }
  const ignored = Object.hasOwn(buildArgs, name)
    ? ' (a build arg is given, but Docker ignores build args that no ARG declares)'
    : '';
  return new DockerfileUnknownArgError(file, line, name, `is not declared by an ARG in scope (a FROM sees only ARGs before the first FROM)${ignored}`);
}

/** A stage by index (`--from=0`, earlier stages only) or by alias; undefined when the value names an image. */
function resolveStageReference(
  value: string,
  current: number,
  stageNames: ReadonlyMap<string, number>,
  file: string,
  line: number,
): number | undefined {
  if (/^\d+$/.test(value)) {
    const index = Number(value);
    if (index >= current) {
      throw new DockerfileStageReferenceError(file, line, `--from=${value} names no earlier stage (this is stage ${current})`);
    }
    return index;
  }
  const index = stageNames.get(value.toLowerCase());
  if (index === current) throw new DockerfileStageReferenceError(file, line, `--from=${value} names the stage it is in`);
  return index;
}

interface FromSource {
  readonly value: string;
  readonly via: ParentVia;
}

/** `COPY --from=x` and every `RUN --mount=…,from=x` of an instruction. */
function fromSources(instruction: Copy | Run): FromSource[] {
  const sources: FromSource[] = [];
  for (const flag of instruction.getFlags()) {
    const value = flag.getValue();
    if (value === null) continue;
    if (instruction instanceof Copy && flag.getName() === 'from') {
      sources.push({ value, via: ParentVia.COPY_FROM });
    } else if (instruction instanceof Run && flag.getName() === 'mount') {
      const from = value
        .split(',')
        .map((pair) => pair.split('='))
        .find(([key]) => key.trim().toLowerCase() === 'from');
      if (from && from.length > 1) sources.push({ value: from.slice(1).join('=').trim(), via: ParentVia.RUN_MOUNT });
    }
  }
  return sources;
}

function selectTarget(target: string | undefined, stages: readonly DockerfileStage[], file: string): number {
  if (target === undefined) return stages.length - 1;
  const found = stages.find((s) => s.name === target.toLowerCase());
  if (!found) throw new DockerfileUnknownTargetError(file, target, stages.flatMap((s) => (s.name ? [s.name] : [])));
  return found.index;
}

function imageKeyAt(reference: string, file: string, line: number, isInternal: (repository: string) => boolean): string {
  try {
    return resolveParentKey(reference, isInternal);
  } catch (error) {
    if (error instanceof InvalidImageReferenceError) {
      throw new DockerfileInvalidReferenceError(file, line, reference, { cause: error });
    }
    throw error;
  }
}
