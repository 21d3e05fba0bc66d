/** A mistake of the user's (bad argument, missing file): printed without a stack, exit code 2. */
export class UsageError extends Error {
  public readonly code = 'USAGE';
  public constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UsageError';
  }
}

/** The command ran and its answer is "no" (a gate that blocks): exit code 1 with the reason printed. */
export class PolicyBlockedError extends Error {
  public readonly code = 'POLICY_BLOCKED';
  public constructor(message: string) {
    super(message);
    this.name = 'PolicyBlockedError';
  }
}
