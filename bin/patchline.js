#!/usr/bin/env node
// The `patchline` command: runs the TypeScript CLI through tsx's require hook (no build step to forget).
// Locally the Lambda handlers run in this process: their JSON logs stay quiet unless asked for.
if (!process.argv.includes('--debug')) process.env.POWERTOOLS_LOG_LEVEL = process.env.POWERTOOLS_LOG_LEVEL || 'SILENT';
// The SDK's notice that it will need Node 22 from 2027 is about the Lambda runtime (nodejs22.x), not this CLI.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED || 'true';
require('tsx/cjs');
require('./patchline.ts');
