import { createHash } from 'crypto';

// aws-local-stepfunctions 3 calls Promise.withResolvers (Node 22+); Node 20 lacks it.
if (typeof (Promise as unknown as { withResolvers?: unknown }).withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers<T>() {
      let resolve!: (value: T | PromiseLike<T>) => void;
      let reject!: (reason?: unknown) => void;
      const promise = new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}

export type TaskHandler = (input: unknown, context: TaskContext) => Promise<unknown>;

export interface TaskContext {
  readonly stateName: string;
  readonly resource: string;
  readonly executionArn: string;
  readonly executionName: string;
  readonly taskToken: string;
}

export interface ExecutionRecord {
  readonly stateMachine: string;
  readonly stateMachineArn: string;
  readonly name: string;
  readonly arn: string;
  readonly input: unknown;
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED' | 'TIMED_OUT';
  output?: unknown;
  error?: { Error: string; Cause: string };
  readonly startedAt: string;
  stoppedAt?: string;
  /** States entered, in order: the execution's history, for the trace and the transition count. */
  readonly states: string[];
}

export interface LocalStateMachine {
  readonly name: string;
  readonly arn: string;
  readonly type: 'STANDARD' | 'EXPRESS';
  readonly definition: Record<string, unknown>;
}

export class ExecutionAlreadyExistsError extends Error {
  public readonly code = 'EXECUTION_ALREADY_EXISTS';
  public constructor(name: string) {
    super(`Execution Already Exists: '${name}'`);
    this.name = 'StepFunctions.ExecutionAlreadyExistsException';
  }
}

/**
 * Runs state machines with aws-local-stepfunctions, binding every Task state to `dispatch` (which routes by the
 * state's resolved Resource ARN), with Step Functions' own name rules: a Standard execution name is unique, a
 * duplicate start with the same input returns the running execution and otherwise fails with ExecutionAlreadyExists.
 */
export class LocalStepFunctions {
  private readonly machines = new Map<string, LocalStateMachine>();
  private readonly executions = new Map<string, ExecutionRecord>();
  private readonly running = new Set<Promise<unknown>>();
  private readonly tokens = new Map<string, { resolve: (output: unknown) => void; reject: (error: Error) => void }>();
  private readonly listeners: Array<(execution: ExecutionRecord) => void> = [];
  /** Running executions' abort (StopExecution), by execution ARN. */
  private readonly aborts = new Map<string, () => void>();
  /** How long every Wait state waits locally (settle windows, scan settling are minutes in AWS), in milliseconds. */
  public waitMillis = 0;

  public constructor(private readonly dispatch: (task: TaskContext, input: unknown, parameters: { resource: string }) => Promise<unknown>) {}

  public register(machine: LocalStateMachine): void {
    this.machines.set(machine.arn, machine);
  }

  public onExecutionEnded(listener: (execution: ExecutionRecord) => void): void {
    this.listeners.push(listener);
  }

  public get allExecutions(): ExecutionRecord[] {
    return [...this.executions.values()];
  }

  /** Starts an execution without waiting for it; `settled()` waits for all. */
  public async startExecution(stateMachineArn: string, input: unknown, name?: string): Promise<{ executionArn: string; startDate: string }> {
    const machine = this.machines.get(stateMachineArn);
    if (!machine) {
      const error = new Error(`State Machine Does Not Exist: '${stateMachineArn}'`);
      error.name = 'StepFunctions.StateMachineDoesNotExistException';
      throw error;
    }
    const executionName = name ?? createHash('sha256').update(`${Date.now()}${Math.random()}`).digest('hex').slice(0, 32);
    if (!/^[A-Za-z0-9_-]{1,80}$/.test(executionName)) {
      const error = new Error(`Invalid Name: '${executionName.slice(0, 100)}'`);
      error.name = 'StepFunctions.InvalidNameException';
      throw error;
    }
    const arnKind = machine.type === 'EXPRESS' ? 'express' : 'execution';
    const arn = `${machine.arn.replace(':stateMachine:', `:${arnKind}:`)}:${executionName}${machine.type === 'EXPRESS' ? `:${this.executions.size}` : ''}`;
    const existing = this.executions.get(arn);
    if (existing) {
      if (existing.status === 'RUNNING' && JSON.stringify(existing.input) === JSON.stringify(input)) {
        return { executionArn: existing.arn, startDate: existing.startedAt };
      }
      throw new ExecutionAlreadyExistsError(executionName);
    }
    const record: ExecutionRecord = {
      stateMachine: machine.name,
      stateMachineArn: machine.arn,
      name: executionName,
      arn,
      input,
      status: 'RUNNING',
      startedAt: new Date().toISOString(),
      states: [],
    };
    this.executions.set(arn, record);
    const run = this.run(machine, record).finally(() => this.running.delete(run));
    this.running.add(run);
    return { executionArn: arn, startDate: record.startedAt };
  }

  /** Resolves the task token of a parked execution; false when no execution waits on it. */
  public sendTaskSuccess(token: string, output: unknown): boolean {
    const waiter = this.tokens.get(token);
    if (!waiter) return false;
    this.tokens.delete(token);
    waiter.resolve(output);
    return true;
  }

  public sendTaskFailure(token: string, error: string, cause: string): boolean {
    const waiter = this.tokens.get(token);
    if (!waiter) return false;
    this.tokens.delete(token);
    const err = new Error(cause);
    err.name = error;
    waiter.reject(err);
    return true;
  }

  /**
   * StopExecution: aborts a running execution (status ABORTED, its status change event follows) and drops its task
   * token, as Step Functions does; false when it is not running.
   */
  public stopExecution(executionArn: string): boolean {
    const abort = this.aborts.get(executionArn);
    if (!abort || this.executions.get(executionArn)?.status !== 'RUNNING') return false;
    abort();
    // The parked task's promise settles too, so the library clears its task and execution timers (9 h, 30 h).
    const waiter = this.tokens.get(`${executionArn}#token`);
    this.tokens.delete(`${executionArn}#token`);
    const aborted = new Error('the execution was stopped');
    aborted.name = 'States.Aborted';
    waiter?.reject(aborted);
    return true;
  }

  /** A promise for the output of the task token, registered before the task's handler runs. */
  public awaitTaskToken(token: string): Promise<unknown> {
    return new Promise((resolve, reject) => this.tokens.set(token, { resolve, reject }));
  }

  public get pendingTokens(): number {
    return this.tokens.size;
  }

  public get busy(): boolean {
    return this.running.size > 0;
  }

  /** Waits until no execution runs (executions may start others meanwhile). */
  public async settled(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /** Promise of any running execution ending (for a caller that interleaves its own work). */
  public nextSettled(): Promise<unknown> {
    return Promise.race([...this.running].map((p) => p.catch(() => undefined)));
  }

  private async run(machine: LocalStateMachine, record: ExecutionRecord): Promise<void> {
    const { StateMachine, ExecutionAbortedError } = await import('aws-local-stepfunctions');
    const taskStates = collectTaskStates(machine.definition);
    const taskToken = `${record.arn}#token`;
    const handlers: Record<string, (input: unknown) => Promise<unknown>> = {};
    for (const [stateName, resource] of taskStates) {
      handlers[stateName] = (input: unknown) =>
        this.dispatch({ stateName, resource, executionArn: record.arn, executionName: record.name, taskToken }, input, { resource });
    }
    const retryIntervalOverrides = Object.fromEntries([...collectRetryStates(machine.definition)].map((s) => [s, 1]));
    const waitTimeOverrides = Object.fromEntries([...walkStates(machine.definition)].filter(([, s]) => s.Type === 'Wait').map(([name]) => [name, this.waitMillis]));
    const stateMachine = new StateMachine(machine.definition as never, { validationOptions: { checkArn: true, checkPaths: true } });
    const startTime = record.startedAt;
    const execution = stateMachine.run(record.input as never, {
      overrides: { taskResourceLocalHandlers: handlers as never, retryIntervalOverrides, waitTimeOverrides },
      context: {
        Execution: { Id: record.arn, Name: record.name, Input: record.input as never, StartTime: startTime },
        StateMachine: { Id: machine.arn, Name: machine.name },
        State: { EnteredTime: startTime },
        Task: { Token: taskToken },
      },
    });
    this.aborts.set(record.arn, () => execution.abort());
    const collectStates = (async () => {
      for await (const event of execution.eventLogs) {
        if (event.type === 'StateEntered') record.states.push(event.state.name);
      }
    })();
    try {
      record.output = await execution.result;
      record.status = 'SUCCEEDED';
    } catch (error) {
      const cause = (error as { cause?: { name?: string; message?: string } }).cause;
      record.status = error instanceof ExecutionAbortedError ? 'ABORTED' : 'FAILED';
      record.error = { Error: cause?.name ?? (error as Error).name, Cause: cause?.message ?? (error as Error).message };
    }
    this.aborts.delete(record.arn);
    await collectStates.catch(() => undefined);
    record.stoppedAt = new Date().toISOString();
    for (const listener of this.listeners) listener(record);
  }
}

function* walkStates(definition: Record<string, unknown>): Generator<[string, Record<string, unknown>]> {
  const states = (definition.States ?? {}) as Record<string, Record<string, unknown>>;
  for (const [name, state] of Object.entries(states)) {
    yield [name, state];
    for (const branch of (state.Branches as Record<string, unknown>[] | undefined) ?? []) yield* walkStates(branch);
    const processor = (state.ItemProcessor ?? state.Iterator) as Record<string, unknown> | undefined;
    if (processor) yield* walkStates(processor);
  }
}

function collectTaskStates(definition: Record<string, unknown>): Map<string, string> {
  const tasks = new Map<string, string>();
  for (const [name, state] of walkStates(definition)) if (state.Type === 'Task') tasks.set(name, String(state.Resource));
  return tasks;
}

function collectRetryStates(definition: Record<string, unknown>): Set<string> {
  const names = new Set<string>();
  for (const [name, state] of walkStates(definition)) if (Array.isArray(state.Retry)) names.add(name);
  return names;
}
