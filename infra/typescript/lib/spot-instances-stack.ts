import * as fs from 'fs';
import * as path from 'path';
import { ArnFormat, Stack, StackProps, Tags } from 'aws-cdk-lib/core';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { Construct } from 'constructs';

// policy.json.tmpl and user_data.sh.tmpl copied from infra/templates/, and wheels/: the
// package's wheel and its dependencies' pinned wheels, as infra/.../wheel.py writes them.
const dir = path.join(__dirname, 'awscli-uploader');
const wheelName = 'awscli_uploader-0.1.0-py3-none-any.whl'; // the package's, in wheels/

export interface SpotInstancesStackProps extends StackProps {
  readonly buckets: string[];
  readonly rootDir: string;
  readonly imageId: string; // pinned: a new AMI must not replace the instance
}

export class SpotInstancesStack extends Stack {
  constructor(scope: Construct, id: string, props: SpotInstancesStackProps) {
    super(scope, id, props);
    const role = new iam.Role(this, 'InstanceRole', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
    });
    const userData = ec2.UserData.forLinux();
    // A known group name: the user data and the policy name it without a reference to it.
    const groupName = `${this.stackName}-uploader`;
    const hookName = 'awscli-uploader-drain';

    // The policy: each statement of the template, its resources repeated per bucket.
    const policy = JSON.parse(fs.readFileSync(path.join(dir, 'policy.json.tmpl'), 'utf8'));
    for (const statement of policy.Statement) {
      role.addToPrincipalPolicy(iam.PolicyStatement.fromJson({
        ...statement,
        Resource: statement.Resource.flatMap(
          (r: string) => props.buckets.map((b) => r.replace('@BUCKET@', b))),
      }));
    }

    // The wheels as one asset (a zip) that the role may read (that one object only).
    const wheel = new s3assets.Asset(this, 'UploaderWheel', { path: path.join(dir, 'wheels') });
    role.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'AwscliUploaderWheelAsset',
      actions: ['s3:GetObject'],
      resources: [wheel.bucket.arnForObjects(wheel.s3ObjectKey)],
    }));

    // The daemon completes the drain hook of this group only.
    role.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'AwscliUploaderLifecycle',
      actions: ['autoscaling:CompleteLifecycleAction', 'autoscaling:RecordLifecycleActionHeartbeat'],
      resources: [this.formatArn({
        service: 'autoscaling', resource: 'autoScalingGroup',
        resourceName: `*:autoScalingGroupName/${groupName}`,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      })],
    }));
    // Once drained, it sets its own data volume to be deleted with it (kept otherwise).
    role.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'AwscliUploaderReleaseVolume',
      actions: ['ec2:ModifyInstanceAttribute'],
      resources: [this.formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' })],
      conditions: { StringEquals: { 'aws:ResourceTag/aws:autoscaling:groupName': groupName } },
    }));

    // The user data: fill every @NAME@ placeholder, then run the script as its own file.
    const values: Record<string, string> = {
      WHEEL_S3_URL: wheel.s3ObjectUrl, WHEEL_NAME: wheelName, ASSET_REGION: this.region,
      ROOT_DIR: props.rootDir, WRITER_GROUP: 'simulation', INTERVAL: '60', STABILITY: '2',
      REGION: this.region, EXTRA_FLAGS: '', PYTHON: 'python3.11',
      INSTALL_DIR: '/opt/awscli-uploader', DATA_DEVICE: '/dev/sdf',
      LIFECYCLE_HOOK: hookName, AUTOSCALING_GROUP: groupName,
    };
    const script = fs.readFileSync(path.join(dir, 'user_data.sh.tmpl'), 'utf8')
      .replace(/@([A-Z][A-Z0-9_]*)@/g, (_m, name: string) => {
        if (!(name in values)) throw new Error(`no value for @${name}@`);
        return values[name];
      });
    userData.addCommands(
      "cat > /usr/local/sbin/awscli-uploader-bootstrap <<'AWSCLI_UPLOADER_BOOTSTRAP'",
      script.trimEnd(),
      'AWSCLI_UPLOADER_BOOTSTRAP',
      'chmod 0755 /usr/local/sbin/awscli-uploader-bootstrap',
      '/usr/local/sbin/awscli-uploader-bootstrap || exit 1',
    );

    // Spot capacity from the group (no spot request of its own), the backlog on its own
    // volume, and a termination hook the daemon completes once it has drained.
    const launchTemplate = new ec2.LaunchTemplate(this, 'LaunchTemplate', {
      machineImage: {
        getImage: () => ({
          imageId: props.imageId, osType: ec2.OperatingSystemType.LINUX, userData,
        }),
      },
      role,
      userData,
      requireImdsv2: true,
      blockDevices: [{
        deviceName: '/dev/sdf',
        volume: ec2.BlockDeviceVolume.ebs(100, {
          volumeType: ec2.EbsDeviceVolumeType.GP3, encrypted: true, deleteOnTermination: false,
        }),
      }],
    });
    Tags.of(launchTemplate).add('awscli-uploader:group', groupName); // finds a kept volume
    const vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'public', subnetType: ec2.SubnetType.PUBLIC }],
    });
    const group = new autoscaling.AutoScalingGroup(this, 'Group', {
      vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      autoScalingGroupName: groupName,
      minCapacity: 1,
      maxCapacity: 1,
      capacityRebalance: true,
      mixedInstancesPolicy: {
        launchTemplate,
        launchTemplateOverrides: ['c6i.large', 'c6a.large', 'c5.large'].map(
          (type) => ({ instanceType: new ec2.InstanceType(type) })),
        instancesDistribution: {
          onDemandBaseCapacity: 0,
          onDemandPercentageAboveBaseCapacity: 0,
          spotAllocationStrategy: autoscaling.SpotAllocationStrategy.PRICE_CAPACITY_OPTIMIZED,
        },
      },
      updatePolicy: autoscaling.UpdatePolicy.rollingUpdate({
        maxBatchSize: 1, minInstancesInService: 0,
      }),
    });
    // The hook is the group's own property: a hook resource would be deleted before the
    // group, and a stack deletion would then terminate the instance without a drain.
    (group.node.defaultChild as autoscaling.CfnAutoScalingGroup).lifecycleHookSpecificationList = [{
      lifecycleHookName: hookName,
      lifecycleTransition: 'autoscaling:EC2_INSTANCE_TERMINATING',
      heartbeatTimeout: 1800,
      defaultResult: 'CONTINUE',
    }];
  }
}
