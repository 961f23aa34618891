//! Limits AWS states only in its API reference text, not in the models:
//! one row per rule, each citing the page (and member) it comes from. The
//! same text is the `documentation` of the member in botocore's model, so
//! `scripts/gen-limits` readers can find it there too.

use super::{Cidr, Limit, Source, Type};

const fn row(id: &'static str, shape: &'static str, ty: Type, source: &'static str) -> Limit {
    Limit {
        id,
        shape,
        ty,
        required: false,
        min: None,
        max: None,
        pattern: None,
        values: &[],
        allowed: None,
        cidr: None,
        source: Source::Reference(source),
    }
}

const fn range(mut l: Limit, min: Option<i64>, max: Option<i64>) -> Limit {
    l.min = min;
    l.max = max;
    l
}

const fn chars(mut l: Limit, max: i64, pattern: &'static str, allowed: &'static str) -> Limit {
    l.max = Some(max);
    l.pattern = Some(pattern);
    l.allowed = Some(allowed);
    l
}

const fn cidr(mut l: Limit, family: Cidr) -> Limit {
    l.cidr = Some(family);
    l
}

const fn pattern(mut l: Limit, pattern: &'static str, allowed: Option<&'static str>) -> Limit {
    l.pattern = Some(pattern);
    l.allowed = allowed;
    l
}

/// "Valid characters: a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*"
const SG_TEXT: &str = r"^[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]*$";
const SG_TEXT_SET: &str = "a-z, A-Z, 0-9, spaces and ._-:/()#,@[]+=&;{}!$*";

/// A rule's description is checked as IpRange's page writes the set. The
/// page of UserIdGroupPair (a rule naming a security group) leaves `&` out
/// of it; converge sends one description for both, so a rule naming a
/// group with `&` in its description is left for AWS to judge.
const INSTANCE_TYPE: &str = "an instance type name (family and generation, a period, the size: m7i.xlarge)";

pub static REFERENCE: &[Limit] = &[
    chars(
        row(
            "ec2:CreateSecurityGroupRequest.Description",
            "security group description",
            Type::String,
            "Amazon EC2 API Reference, CreateSecurityGroup, GroupDescription: \"Up to 255 characters in length. Valid characters: a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*\"",
        ),
        255,
        SG_TEXT,
        SG_TEXT_SET,
    ),
    chars(
        row(
            "ec2:IpRange.Description",
            "security group rule description",
            Type::String,
            "Amazon EC2 API Reference, IpRange, Description: \"Up to 255 characters in length. Allowed characters are a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*\"",
        ),
        255,
        SG_TEXT,
        SG_TEXT_SET,
    ),
    cidr(
        row(
            "ec2:IpRange.CidrIp",
            "IPv4 CIDR",
            Type::String,
            "Amazon EC2 API Reference, IpRange, CidrIp: \"The IPv4 address range\" (IPv6 ranges go in Ipv6Range.CidrIpv6)",
        ),
        Cidr::V4,
    ),
    pattern(
        row(
            "ec2:RequestLaunchTemplateData.InstanceType",
            "instance type name",
            Type::String,
            "Amazon EC2 User Guide, Amazon EC2 instance type naming conventions: family, generation and options, a period, then the size (m7i.xlarge)",
        ),
        r"^[a-z][a-z0-9-]*\.[a-z0-9-]+$",
        Some(INSTANCE_TYPE),
    ),
    pattern(
        row(
            "autoscaling:LaunchTemplateOverrides.InstanceType",
            "instance type name",
            Type::String,
            "Amazon EC2 User Guide, Amazon EC2 instance type naming conventions: family, generation and options, a period, then the size (m7i.xlarge)",
        ),
        r"^[a-z][a-z0-9-]*\.[a-z0-9-]+$",
        Some(INSTANCE_TYPE),
    ),
    range(
        row(
            "elasticache:CreateReplicationGroupMessage.NumCacheClusters",
            "cache clusters",
            Type::Integer,
            "Amazon ElastiCache API Reference, CreateReplicationGroup, NumCacheClusters: \"The maximum permitted value for NumCacheClusters is 6 (1 primary plus 5 replicas)\"",
        ),
        Some(1),
        Some(6),
    ),
    range(
        row(
            "s3:LifecycleExpiration.Days",
            "days",
            Type::Integer,
            "Amazon S3 API Reference, LifecycleExpiration, Days: \"The value must be a non-zero positive integer\"",
        ),
        Some(1),
        None,
    ),
    range(
        row(
            "s3:NoncurrentVersionExpiration.NoncurrentDays",
            "days",
            Type::Integer,
            "Amazon S3 API Reference, NoncurrentVersionExpiration, NoncurrentDays: \"The value must be a non-zero positive integer\"",
        ),
        Some(1),
        None,
    ),
    range(
        row(
            "rds:CreateDBInstanceMessage.BackupRetentionPeriod",
            "days",
            Type::Integer,
            "Amazon RDS API Reference, CreateDBInstance, BackupRetentionPeriod: \"Must be a value from 0 to 35\"",
        ),
        Some(0),
        Some(35),
    ),
    range(
        row(
            "rds:CreateDBInstanceMessage.Port",
            "port",
            Type::Integer,
            "Amazon RDS API Reference, CreateDBInstance, Port: \"Valid Values: 1150-65535\"",
        ),
        Some(1150),
        Some(65535),
    ),
    pattern(
        row(
            "rds:CreateDBInstanceMessage.MasterUsername",
            "master user name",
            Type::String,
            "Amazon RDS API Reference, CreateDBInstance, MasterUsername: \"Must be 1 to 16 letters, numbers, or underscores. First character must be a letter.\"",
        ),
        r"^[A-Za-z][A-Za-z0-9_]{0,15}$",
        Some("1 to 16 letters, digits or underscores, starting with a letter"),
    ),
];
