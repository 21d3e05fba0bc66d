/**
 * Step Functions evaluates a Task's `Credentials` (`RoleArn.$`) against the state input, like its Parameters, and
 * calls the service with that role; aws-local-stepfunctions hands a local handler only the evaluated Parameters. This
 * copies each Task's Credentials into its Parameters (as `Credentials`, a name no integration used here takes), so the
 * stand-in receives the role the real call would be made with.
 */
export function withTaskCredentials(definition: Record<string, unknown>): Record<string, unknown> {
  // A JSON copy, not structuredClone: under jest that yields objects of another realm, which the interpreter's
  // plain-object checks reject (Parameters then evaluate to nothing).
  const copy = JSON.parse(JSON.stringify(definition)) as Record<string, unknown>;
  visit(copy);
  return copy;
}

function visit(machine: Record<string, unknown>): void {
  const states = (machine.States ?? {}) as Record<string, Record<string, unknown>>;
  for (const state of Object.values(states)) {
    if (state.Type === 'Task' && state.Credentials !== undefined && isObject(state.Parameters)) {
      state.Parameters = { ...state.Parameters, Credentials: state.Credentials };
    }
    for (const nested of [state.ItemProcessor, state.Iterator, ...((state.Branches as unknown[]) ?? [])]) {
      if (isObject(nested)) visit(nested);
    }
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
