import { Tracer } from '@aws-lambda-powertools/tracer';

/**
 * One Powertools Tracer per Lambda container: every AWS SDK client a handler builds from its environment is wrapped,
 * so each call shows as an X-Ray subsegment. Outside Lambda (CLI, tests, the local runtime) the tracer is disabled
 * and the client is returned as it is.
 */
export const tracer = new Tracer();

export function traced<T>(client: T): T {
  return tracer.captureAWSv3Client(client);
}
