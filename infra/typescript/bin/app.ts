import { App } from 'aws-cdk-lib/core';
import { SpotInstancesStack } from '../lib/spot-instances-stack';

const app = new App();
new SpotInstancesStack(app, 'AwscliUploaderTs', {
  buckets: (app.node.tryGetContext('bucketNames') ?? 'my-sim-results').split(','),
  rootDir: app.node.tryGetContext('rootDir') ?? '/data/output/s3',
  imageId: app.node.tryGetContext('imageId') ?? 'ami-0123456789abcdef0',
});
app.synth();
