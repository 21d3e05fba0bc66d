import { Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { join } from 'path';

export interface PatchlineFunctionProps {
  /** Handler file name under lambdas/handlers, without extension (`image-pushed`). */
  readonly handler: string;
  /** Environment variables added to the shared ones. @default - none */
  readonly environment?: Record<string, string>;
  /** Dead-letter queue for asynchronous invocations. */
  readonly deadLetterQueue: sqs.IQueue;
  /** @default Duration.seconds(30) */
  readonly timeout?: Duration;
  /** @default 256 */
  readonly memorySize?: number;
}

export const PATCHLINE_HANDLER_METADATA = 'patchline:handler';
const HANDLER_NAME = /^[a-z][a-z0-9-]{1,62}$/;

/**
 * Every Patchline Lambda in one shape: Node.js 22 on arm64, X-Ray tracing, its own log group with retention,
 * minified esbuild bundle with the runtime's modular AWS SDK v3, Powertools settings, a DLQ for async invocations.
 */
export class PatchlineFunction extends NodejsFunction {
  public constructor(scope: Construct, id: string, props: PatchlineFunctionProps) {
    if (!HANDLER_NAME.test(props.handler)) {
      throw new Error(`PatchlineFunction handler must match ${HANDLER_NAME} (received ${JSON.stringify(props.handler)})`);
    }
    const logGroup = new logs.LogGroup(scope, `${id}Logs`, { retention: logs.RetentionDays.THREE_MONTHS });
    // Its own role, allowed to write only to its own log group (not AWSLambdaBasicExecutionRole's logs:* on every group).
    const role = new iam.Role(scope, `${id}Role`, { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    logGroup.grantWrite(role);
    super(scope, id, {
      role,
      entry: join(__dirname, '..', 'lambdas', 'handlers', `${props.handler}.ts`),
      handler: 'handler',
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? 256,
      timeout: props.timeout ?? Duration.seconds(30),
      tracing: lambda.Tracing.ACTIVE,
      logGroup,
      deadLetterQueue: props.deadLetterQueue,
      environment: {
        POWERTOOLS_SERVICE_NAME: `patchline-${props.handler}`,
        POWERTOOLS_METRICS_NAMESPACE: 'Patchline',
        POWERTOOLS_LOG_LEVEL: 'INFO',
        ...props.environment,
      },
      bundling: { minify: true, sourceMap: false, target: 'node22', externalModules: ['@aws-sdk/*'] },
    });
    // Lets the local runtime bind this function to its in-process handler.
    (this.node.defaultChild as lambda.CfnFunction).addMetadata(PATCHLINE_HANDLER_METADATA, props.handler);
  }
}
