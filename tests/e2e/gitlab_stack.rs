//! The GitLab stack: its data tier, load balancers, rendered configuration, boot on a real account, migration order, scaling.

use super::*;

#[test]
fn data_tier_load_balancer_and_gitlab_rb() {
    let moto = Moto::start();
    let dir = Scratch::beside_stacks("data");
    apply(&moto, STACK);

    rt().block_on(async {
        let db = moto.rds().describe_db_instances().send().await.unwrap();
        let db = &db.db_instances()[0];
        assert_eq!(db.engine(), Some("postgres"));
        assert_eq!((db.multi_az(), db.storage_encrypted()), (Some(true), Some(true)), "Multi-AZ and encrypted");
        assert_eq!(db.db_instance_class(), Some("db.t4g.medium"), "staging's class");
        assert_eq!(db.db_subnet_group().and_then(|g| g.db_subnet_group_name()), Some("gitlab-ha-staging-db-subnets"));
        assert_eq!(db.db_parameter_groups()[0].db_parameter_group_name(), Some("gitlab-ha-staging-db-params"));

        let ec = moto.elasticache().describe_replication_groups().send().await.unwrap();
        let g = &ec.replication_groups()[0];
        assert_eq!(g.automatic_failover().map(|f| f.as_str()), Some("enabled"));
        assert_eq!(g.multi_az().map(|m| m.as_str()), Some("enabled"));
        assert_eq!(g.cluster_enabled(), Some(false), "GitLab needs cluster mode disabled");
        assert_eq!((g.transit_encryption_enabled(), g.at_rest_encryption_enabled()), (Some(true), Some(true)));
        assert_eq!(g.member_clusters().len(), 2, "a primary and a replica");

        let efs = moto.efs();
        let fs = efs.describe_file_systems().send().await.unwrap();
        let fs = &fs.file_systems()[0];
        assert_eq!(fs.encrypted(), Some(true));
        let mts = efs.describe_mount_targets().file_system_id(fs.file_system_id()).send().await.unwrap();
        let mut subnets: Vec<&str> = mts.mount_targets().iter().map(|m| m.subnet_id()).collect();
        subnets.sort();
        let ec2 = moto.ec2();
        let private = ec2
            .describe_subnets()
            .filters(Filter::builder().name("tag:converge:env").values("staging").build())
            .filters(Filter::builder().name("tag:converge:resource").values("private_a").values("private_b").build())
            .send()
            .await
            .unwrap();
        let mut ids: Vec<&str> = private.subnets().iter().filter_map(|s| s.subnet_id()).collect();
        ids.sort();
        assert_eq!(subnets, ids, "one mount target per private subnet");
    });

    // The internal ALB, its target group's readiness check, and listeners:
    // HTTPS forwarding to the target group, HTTP redirecting to HTTPS.
    rt().block_on(async {
        let elb = moto.elbv2();
        let lbs = elb.describe_load_balancers().names("gitlab-ha-staging-alb").send().await.unwrap();
        let lb = &lbs.load_balancers()[0];
        assert_eq!(lb.scheme().map(|s| s.as_str()), Some("internal"));
        assert_eq!(lb.r#type().map(|t| t.as_str()), Some("application"));
        let tgs = elb.describe_target_groups().names("gitlab-ha-staging-app-tg").send().await.unwrap();
        let tg = &tgs.target_groups()[0];
        assert_eq!(tg.health_check_path(), Some("/-/readiness"));
        let attrs = elb.describe_load_balancer_attributes().load_balancer_arn(lb.load_balancer_arn().unwrap());
        let attrs = attrs.send().await.unwrap();
        let idle = attrs.attributes().iter().find(|a| a.key() == Some("idle_timeout.timeout_seconds")).unwrap();
        assert_eq!(idle.value(), Some("600"), "long enough for a large clone");
        let listeners =
            elb.describe_listeners().load_balancer_arn(lb.load_balancer_arn().unwrap()).send().await.unwrap();
        let mut by_port: Vec<(i32, String, String)> = listeners
            .listeners()
            .iter()
            .map(|l| {
                let a = &l.default_actions()[0];
                let what = match a.redirect_config() {
                    Some(r) => format!("redirect {}:{}", r.protocol().unwrap(), r.port().unwrap()),
                    None if a.target_group_arn() == tg.target_group_arn() => "forward app".to_string(),
                    None => "forward other".to_string(),
                };
                (l.port().unwrap(), l.protocol().unwrap().as_str().to_string(), what)
            })
            .collect();
        by_port.sort();
        assert_eq!(
            by_port,
            [
                (80, "HTTP".to_string(), "redirect HTTPS:443".to_string()),
                (443, "HTTPS".to_string(), "forward app".to_string()),
                (5050, "HTTPS".to_string(), "forward other".to_string())
            ]
        );
    });

    // The groups: one migration node; app nodes from a spot mix whose user
    // data skips migrations; runners with the S3 cache.
    rt().block_on(async {
        let asg = moto.autoscaling().describe_auto_scaling_groups().send().await.unwrap();
        let group = |name: &str| {
            asg.auto_scaling_groups()
                .iter()
                .find(|g| g.auto_scaling_group_name() == Some(name))
                .unwrap_or_else(|| panic!("{name}"))
        };
        let migrate = group("gitlab-ha-staging-gitlab-migrate");
        assert_eq!((migrate.min_size(), migrate.max_size(), migrate.desired_capacity()), (Some(1), Some(1), Some(1)));
        let app = group("gitlab-ha-staging-gitlab-app");
        assert_eq!((app.min_size(), app.max_size()), (Some(1), Some(2)), "staging's sizes");
        let mix = app.mixed_instances_policy().expect("spot mix");
        let types: Vec<&str> =
            mix.launch_template().unwrap().overrides().iter().filter_map(|o| o.instance_type()).collect();
        assert_eq!(types, ["t3.large", "t3a.large"]);
        assert_eq!(app.health_check_type(), Some("ELB"));
        assert_eq!(app.target_group_arns().len(), 3, "HTTPS, the registry and SSH");
        let policies = moto
            .autoscaling()
            .describe_policies()
            .auto_scaling_group_name("gitlab-ha-staging-gitlab-app")
            .send()
            .await
            .unwrap();
        let cpu = policies.scaling_policies()[0].target_tracking_configuration().unwrap();
        assert_eq!(cpu.target_value(), Some(60.0));
        let workers = group("gitlab-ha-staging-runner-workers");
        assert_eq!(workers.min_size(), Some(0));
        group("gitlab-ha-staging-runner-manager");

        let ec2 = moto.ec2();
        let user_data = |lt: String| {
            let ec2 = ec2.clone();
            async move {
                let v = ec2
                    .describe_launch_template_versions()
                    .launch_template_id(lt)
                    .versions("$Default")
                    .send()
                    .await
                    .unwrap();
                let b64 =
                    v.launch_template_versions()[0].launch_template_data().unwrap().user_data().unwrap().to_string();
                String::from_utf8(base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap())
                    .unwrap()
            }
        };
        let lt_of = |g: &aws_sdk_autoscaling::types::AutoScalingGroup| {
            g.launch_template()
                .or_else(|| g.mixed_instances_policy()?.launch_template()?.launch_template_specification())
                .and_then(|s| s.launch_template_id())
                .unwrap()
                .to_string()
        };
        let app_ud = user_data(lt_of(app)).await;
        let migrate_ud = user_data(lt_of(migrate)).await;
        assert!(
            app_ud.contains("touch /etc/gitlab/skip-auto-migrations /etc/gitlab/skip-auto-reconfigure"),
            "{app_ud}"
        );
        assert!(app_ud.contains("gitlab_rails['auto_migrate'] = false"), "{app_ud}");
        assert!(!migrate_ud.contains("skip-auto-migrations"), "{migrate_ud}");
        assert!(migrate_ud.contains("gitlab_rails['auto_migrate'] = true"), "{migrate_ud}");
        let manager_ud = user_data(lt_of(group("gitlab-ha-staging-runner-manager"))).await;
        for line in [
            "Type = \"s3\"",
            "Shared = true",
            "BucketName = \"acme-gitlab-staging-runner-cache\"",
            "BucketLocation = \"eu-west-1\"",
            "name = \"gitlab-ha-staging-runner-workers\"",
        ] {
            assert!(manager_ud.contains(line), "missing {line}:\n{manager_ud}");
        }
    });

    // gitlab.rb in the config bucket holds the real endpoints and buckets.
    rt().block_on(async {
        let db = moto.rds().describe_db_instances().send().await.unwrap();
        let db_host = db.db_instances()[0].endpoint().unwrap().address().unwrap().to_string();
        let ec = moto.elasticache().describe_replication_groups().send().await.unwrap();
        let redis_host =
            ec.replication_groups()[0].node_groups()[0].primary_endpoint().unwrap().address().unwrap().to_string();
        let obj = moto.s3().get_object().bucket("acme-gitlab-staging-config").key("gitlab.rb").send().await.unwrap();
        let rb = String::from_utf8(obj.body.collect().await.unwrap().into_bytes().to_vec()).unwrap();
        for line in [
            format!("gitlab_rails['db_host'] = '{db_host}'"),
            format!("gitlab_rails['redis_host'] = '{redis_host}'"),
            "postgresql['enable'] = false".to_string(),
            "redis['enable'] = false".to_string(),
            "gitlab_rails['redis_ssl'] = true".to_string(),
            "gitlab_rails['object_store']['objects']['artifacts']['bucket'] = 'acme-gitlab-staging-objects/artifacts'"
                .to_string(),
            "    'bucket' => 'acme-gitlab-staging-registry',".to_string(),
            "gitlab_rails['monitoring_whitelist'] = ['127.0.0.0/8', '10.30.0.0/16']".to_string(),
        ] {
            assert!(rb.lines().any(|l| l == line), "missing `{line}` in gitlab.rb:\n{rb}");
        }
    });

    // The DB instance class changes in place: one ModifyDBInstance.
    let bigger = stack_variant(
        &dir,
        "bigger.yaml",
        &[("      db_instance_class: db.t4g.medium", "      db_instance_class: db.t4g.large")],
    );
    let r = plan(&moto, path_str(&bigger)).expect(2);
    assert!(
        r.stdout.contains("  ~ db (rds.db_instance, gitlab-ha-staging-db) will be updated in place"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("~ instance_class = \"db.t4g.medium\" → \"db.t4g.large\""), "{}", r.stdout);
    assert!(r.stdout.contains("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy."), "{}", r.stdout);
    let mark = moto.calls().len();
    apply(&moto, path_str(&bigger));
    let muts: Vec<String> = moto.mutating_since(mark).into_iter().map(|c| c.operation).collect();
    assert_eq!(muts, ["ModifyDBInstance", "AddTagsToResource"]);
    plan(&moto, path_str(&bigger)).expect(0);

    // A new engine replaces the instance, and the plan says why.
    let other = stack_variant(
        &dir,
        "engine.yaml",
        &[
            ("      engine: postgres\n", "      engine: mysql\n"),
            ("  postgres_version: \"16.4\"", "  postgres_version: \"8.0.39\""),
            ("  postgres_family: postgres16", "  postgres_family: mysql8.0"),
        ],
    );
    let r = plan(&moto, path_str(&other)).expect(2);
    assert!(
        r.stdout
            .contains("-/+ db (rds.db_instance, gitlab-ha-staging-db) must be replaced (engine forces replacement)"),
        "{}",
        r.stdout
    );

    // A parameter: in place, pending the next reboot.
    let tuned = stack_variant(
        &dir,
        "tuned.yaml",
        &[("        log_min_duration_statement: \"1000\"", "        log_min_duration_statement: \"250\"")],
    );
    let r = plan(&moto, path_str(&tuned)).expect(2);
    assert!(r.stdout.contains("~ log_min_duration_statement = \"1000\" → \"250\""), "{}", r.stdout);
    apply(&moto, path_str(&tuned));
    plan(&moto, path_str(&tuned)).expect(0);

    // Editing the template plans one s3.object update, shown as a line diff.
    let template = std::fs::read_to_string(harness::repo().join("templates/gitlab.rb.j2")).unwrap();
    dir.write(
        "gitlab.rb.j2",
        &template.replace(
            "letsencrypt['enable'] = false\n",
            "letsencrypt['enable'] = false\nnginx['listen_https'] = false\n",
        ),
    );
    let edited = stack_variant(
        &dir,
        "edited.yaml",
        &[
            ("$template: ../templates/gitlab.rb.j2", "$template: gitlab.rb.j2"),
            ("        log_min_duration_statement: \"1000\"", "        log_min_duration_statement: \"250\""),
        ],
    );
    let r = plan(&moto, path_str(&edited)).expect(2);
    assert!(
        r.stdout.contains("  ~ gitlab_rb (s3.object, acme-gitlab-staging-config/gitlab.rb) will be updated in place"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("          + nginx['listen_https'] = false"), "{}", r.stdout);
    // The nodes embed gitlab.rb's version: new launch template versions, and
    // the groups are refreshed.
    for follower in ["app_lt", "migrate_lt", "gitlab_migrate", "gitlab_app"] {
        assert!(r.stdout.contains(&format!("  ~ {follower} (")), "{follower}:\n{}", r.stdout);
    }
    assert!(r.stdout.contains("  ~ app_lt (ec2.launch_template, lt-"), "{}", r.stdout);
    assert!(r.stdout.contains("      ~ user_data = (known after apply)\n"), "one line, not the old text: {}", r.stdout);
    assert!(r.stdout.contains("Plan: 0 to add, 5 to change, 0 to replace, 0 to destroy."), "{}", r.stdout);
    let mark = moto.calls().len();
    apply(&moto, path_str(&edited));
    let mut muts: Vec<String> = moto.mutating_since(mark).into_iter().map(|c| c.operation).collect();
    muts.sort();
    assert_eq!(
        muts,
        [
            "CreateLaunchTemplateVersion",
            "CreateLaunchTemplateVersion",
            // `converge:applied` on the groups and templates (the object's
            // is in its PutObject).
            "CreateOrUpdateTags",
            "CreateOrUpdateTags",
            "CreateTags",
            "CreateTags",
            "ModifyLaunchTemplate",
            "ModifyLaunchTemplate",
            "PutObject",
            "StartInstanceRefresh",
            "StartInstanceRefresh",
            "UpdateAutoScalingGroup",
            "UpdateAutoScalingGroup"
        ]
    );
    plan(&moto, path_str(&edited)).expect(0);
    rt().block_on(async {
        let asg = moto.autoscaling();
        let r = asg
            .describe_instance_refreshes()
            .auto_scaling_group_name("gitlab-ha-staging-gitlab-app")
            .send()
            .await
            .unwrap();
        let prefs = r.instance_refreshes()[0].preferences().unwrap();
        assert_eq!(
            (prefs.min_healthy_percentage(), prefs.instance_warmup()),
            (Some(50), Some(300)),
            "the spec's rollout"
        );
    });
}

/// The user data of a launch template's default version.
async fn user_data_of(ec2: &aws_sdk_ec2::Client, lt: &str) -> String {
    let v = ec2.describe_launch_template_versions().launch_template_id(lt).versions("$Default").send().await.unwrap();
    let b64 = v.launch_template_versions()[0].launch_template_data().unwrap().user_data().unwrap().to_string();
    String::from_utf8(base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap()).unwrap()
}

/// One EC2 object's id by its `converge:resource` tag (staging).
fn tagged_filter(resource: &str) -> Vec<Filter> {
    vec![
        Filter::builder().name("tag:converge:resource").values(resource).build(),
        Filter::builder().name("tag:converge:env").values("staging").build(),
    ]
}

#[test]
fn the_stack_is_built_to_boot_on_a_real_account() {
    let moto = Moto::start();
    apply(&moto, STACK);
    let ec2 = moto.ec2();
    let manager_sg = sg_id(&moto, "runner_manager_sg");
    rt().block_on(async {
        // Egress: each private subnet's default route goes to a NAT gateway
        // in a public subnet, whose own default route goes to the internet
        // gateway attached to the VPC.
        let vpc = ec2.describe_vpcs().set_filters(Some(tagged_filter("vpc"))).send().await.unwrap();
        let vpc_id = vpc.vpcs()[0].vpc_id().unwrap().to_string();
        let igw = ec2.describe_internet_gateways().set_filters(Some(tagged_filter("igw"))).send().await.unwrap();
        let igw = &igw.internet_gateways()[0];
        assert_eq!(igw.attachments()[0].vpc_id(), Some(vpc_id.as_str()), "the gateway is attached to the VPC");
        let igw_id = igw.internet_gateway_id().unwrap();
        let subnet_id = |name: &str| {
            let ec2 = ec2.clone();
            let name = name.to_string();
            async move {
                let s = ec2.describe_subnets().set_filters(Some(tagged_filter(&name))).send().await.unwrap();
                let s = &s.subnets()[0];
                assert_ne!(s.map_public_ip_on_launch(), Some(true), "{name} gives no public IPs");
                s.subnet_id().unwrap().to_string()
            }
        };
        let default_route = |subnet: String| {
            let ec2 = ec2.clone();
            async move {
                let t = ec2
                    .describe_route_tables()
                    .filters(Filter::builder().name("association.subnet-id").values(&subnet).build())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(t.route_tables().len(), 1, "{subnet} has its own route table");
                let table = t.route_tables()[0].clone();
                let route = table
                    .routes()
                    .iter()
                    .find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
                    .unwrap_or_else(|| panic!("{subnet} has no default route"))
                    .clone();
                (table, route)
            }
        };
        let public: Vec<String> = vec![subnet_id("public_a").await, subnet_id("public_b").await];
        for p in &public {
            let (_, route) = default_route(p.clone()).await;
            assert_eq!(route.gateway_id(), Some(igw_id), "public subnet {p} routes to the internet gateway");
        }
        let mut private_tables = Vec::new();
        for name in ["private_a", "private_b"] {
            let (table, route) = default_route(subnet_id(name).await).await;
            let nat = route.nat_gateway_id().unwrap_or_else(|| panic!("{name} routes to a NAT gateway"));
            let n = ec2.describe_nat_gateways().nat_gateway_ids(nat).send().await.unwrap();
            let n = &n.nat_gateways()[0];
            assert!(public.iter().any(|p| Some(p.as_str()) == n.subnet_id()), "{name}'s NAT is in a public subnet");
            assert!(n.nat_gateway_addresses()[0].allocation_id().is_some(), "the NAT has an Elastic IP");
            private_tables.push(table.route_table_id().unwrap().to_string());
        }
        // S3 through a gateway endpoint on the private route tables.
        let ep = ec2.describe_vpc_endpoints().set_filters(Some(tagged_filter("s3_endpoint"))).send().await.unwrap();
        let ep = &ep.vpc_endpoints()[0];
        assert_eq!(ep.service_name(), Some("com.amazonaws.eu-west-1.s3"));
        assert_eq!(ep.vpc_endpoint_type().map(|t| t.as_str()), Some("Gateway"));
        let mut on: Vec<String> = ep.route_table_ids().to_vec();
        on.sort();
        private_tables.sort();
        assert_eq!(on, private_tables, "the endpoint serves the private route tables");

        // No launch template asks for a public IP; no instance got one.
        let lts = ec2.describe_launch_templates().set_filters(Some(filters("staging"))).send().await.unwrap();
        assert_eq!(lts.launch_templates().len(), 5);
        for lt in lts.launch_templates() {
            let v = ec2
                .describe_launch_template_versions()
                .launch_template_id(lt.launch_template_id().unwrap())
                .versions("$Default")
                .send()
                .await
                .unwrap();
            let data = v.launch_template_versions()[0].launch_template_data().unwrap();
            assert!(
                data.network_interfaces().iter().all(|n| n.associate_public_ip_address() != Some(true)),
                "{:?} asks for a public IP",
                lt.launch_template_name()
            );
        }
        let instances = ec2.describe_instances().set_filters(Some(filters("staging"))).send().await.unwrap();
        let instances: Vec<_> = instances.reservations().iter().flat_map(|r| r.instances()).collect();
        assert!(!instances.is_empty(), "the groups launched instances");
        for i in &instances {
            let subnet = i.subnet_id().unwrap_or_default();
            assert!(!public.iter().any(|p| p == subnet), "{:?} runs in a public subnet", i.instance_id());
        }

        // IAM: every role's policies name only this stack's buckets and
        // secrets (and the EC2 and Auto Scaling objects it owns).
        let s3 = moto.s3();
        let buckets: Vec<String> = BUCKETS.iter().map(|b| format!("arn:aws:s3:::{b}")).collect();
        let sm = moto.secretsmanager();
        let mut secrets: Vec<String> = Vec::new();
        for page in sm.list_secrets().send().await.unwrap().secret_list() {
            let ours = page.tags().iter().any(|t| t.key() == Some("converge:env") && t.value() == Some("staging"));
            if ours || page.name().is_some_and(|n| n.starts_with("rds!")) {
                secrets.push(page.arn().unwrap().to_string());
            }
        }
        let iam = moto.iam();
        let roles = iam.list_roles().path_prefix("/converge/gitlab-ha/staging/").send().await.unwrap();
        let mut names: Vec<&str> = roles.roles().iter().map(|r| r.role_name()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "gitlab-ha-staging-backup-role",
                "gitlab-ha-staging-gitaly-role",
                "gitlab-ha-staging-gitlab-migrate-role",
                "gitlab-ha-staging-gitlab-node-role",
                "gitlab-ha-staging-runner-manager-role"
            ]
        );
        for role in names {
            if role == "gitlab-ha-staging-backup-role" {
                // AWS Backup's own managed policies, and nothing else.
                let attached = iam.list_attached_role_policies().role_name(role).send().await.unwrap();
                let mut arns: Vec<&str> = attached.attached_policies().iter().filter_map(|p| p.policy_arn()).collect();
                arns.sort();
                assert_eq!(
                    arns,
                    [
                        "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",
                        "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores"
                    ]
                );
                continue;
            }
            let policies = iam.list_role_policies().role_name(role).send().await.unwrap();
            assert!(!policies.policy_names().is_empty(), "{role} has policies");
            for p in policies.policy_names() {
                let doc = iam.get_role_policy().role_name(role).policy_name(p).send().await.unwrap();
                let text = percent_encoding::percent_decode_str(doc.policy_document()).decode_utf8_lossy().to_string();
                let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
                for st in doc["Statement"].as_array().unwrap() {
                    let resources: Vec<&str> = match &st["Resource"] {
                        serde_json::Value::String(r) => vec![r.as_str()],
                        serde_json::Value::Array(rs) => rs
                            .iter()
                            .map(|r| r.as_str().unwrap_or_else(|| panic!("{role}/{p}: resource {r}")))
                            .collect(),
                        other => panic!("{role}/{p}: resource {other}"),
                    };
                    for r in resources {
                        if r.starts_with("arn:aws:s3:::") {
                            let bucket = r.trim_end_matches("/*");
                            assert!(buckets.iter().any(|b| b == bucket), "{role}/{p} names a foreign bucket {r}");
                        } else if r.starts_with("arn:aws:secretsmanager:") {
                            assert!(secrets.iter().any(|s| s == r), "{role}/{p} names a foreign secret {r}");
                        } else if r == "*" {
                            let actions = match &st["Action"] {
                                serde_json::Value::String(a) => vec![a.clone()],
                                serde_json::Value::Array(a) => {
                                    a.iter().filter_map(|a| a.as_str().map(str::to_string)).collect()
                                }
                                _ => vec![],
                            };
                            assert!(
                                actions.iter().all(|a| a.contains(":Describe")),
                                "{role}/{p}: only reads on every resource, got {actions:?}"
                            );
                        } else {
                            assert!(
                                r.starts_with("arn:aws:ec2:eu-west-1:*:")
                                    || r.starts_with("arn:aws:autoscaling:eu-west-1:"),
                                "{role}/{p}: {r}"
                            );
                            if r.ends_with("instance/*") {
                                assert_eq!(st["Condition"]["StringEquals"]["aws:ResourceTag/converge:env"], "staging");
                            }
                        }
                    }
                }
            }
        }
        // The runner workers have no role at all.
        let asg = moto.autoscaling().describe_auto_scaling_groups().send().await.unwrap();
        let group = |name: &str| {
            asg.auto_scaling_groups()
                .iter()
                .find(|g| g.auto_scaling_group_name() == Some(name))
                .unwrap_or_else(|| panic!("{name}"))
                .clone()
        };
        let lt_of = |g: &aws_sdk_autoscaling::types::AutoScalingGroup| {
            g.launch_template()
                .or_else(|| g.mixed_instances_policy()?.launch_template()?.launch_template_specification())
                .and_then(|s| s.launch_template_id())
                .unwrap()
                .to_string()
        };
        let workers = group("gitlab-ha-staging-runner-workers");
        let v = ec2.describe_launch_template_versions().launch_template_id(lt_of(&workers)).versions("$Default");
        let v = v.send().await.unwrap();
        assert!(v.launch_template_versions()[0].launch_template_data().unwrap().iam_instance_profile().is_none());

        // Runners: workers protected from scale-in, AZRebalance suspended,
        // and SSH from the manager's group to the workers'.
        assert_eq!(workers.new_instances_protected_from_scale_in(), Some(true));
        let suspended: Vec<&str> = workers.suspended_processes().iter().filter_map(|p| p.process_name()).collect();
        assert_eq!(suspended, ["AZRebalance"]);
        let runners =
            ec2.describe_security_groups().set_filters(Some(tagged_filter("runners_sg"))).send().await.unwrap();
        let ssh = runners.security_groups()[0]
            .ip_permissions()
            .iter()
            .find(|p| p.from_port() == Some(22))
            .expect("runners_sg admits SSH");
        assert_eq!(ssh.user_id_group_pairs()[0].group_id(), Some(manager_sg.as_str()), "from the manager only");
        let manager_ud = user_data_of(&ec2, &lt_of(&group("gitlab-ha-staging-runner-manager"))).await;
        for line in [
            "concurrent = 3",
            "max_instances = 3",
            "capacity_per_instance = 1",
            "[runners.autoscaler.connector_config]",
            "username = \"ubuntu\"",
            "BucketName = \"acme-gitlab-staging-runner-cache\"",
            "name = \"gitlab-ha-staging-runner-workers\"",
        ] {
            assert!(manager_ud.lines().any(|l| l.trim() == line), "missing `{line}` in:\n{manager_ud}");
        }
        let worker_ud = user_data_of(&ec2, &lt_of(&workers)).await;
        assert!(worker_ud.contains("usermod -aG docker ubuntu"), "{worker_ud}");

        // Gitaly: one node in the AZ of its own data volume, which its user
        // data attaches; the volume is encrypted.
        let gitaly = group("gitlab-ha-staging-gitaly");
        assert_eq!((gitaly.min_size(), gitaly.max_size()), (Some(1), Some(1)));
        let vol = ec2.describe_volumes().set_filters(Some(tagged_filter("gitaly_data"))).send().await.unwrap();
        let vol = &vol.volumes()[0];
        assert_eq!(vol.encrypted(), Some(true));
        assert_eq!(vol.size(), Some(50), "staging's size");
        let subnet = ec2.describe_subnets().subnet_ids(gitaly.vpc_zone_identifier().unwrap()).send().await.unwrap();
        assert_eq!(subnet.subnets()[0].availability_zone(), vol.availability_zone(), "node and volume share an AZ");
        let gitaly_ud = user_data_of(&ec2, &lt_of(&gitaly)).await;
        assert!(gitaly_ud.contains(&format!("volume={}", vol.volume_id().unwrap())), "{gitaly_ud}");
        assert!(gitaly_ud.contains("listen_addr: '0.0.0.0:8075'"), "{gitaly_ud}");

        // gitlab.rb: NGINX behind the load balancer, repositories on the
        // Gitaly node, a prefix per object type, the registry, the EFS guard.
        let elb = moto.elbv2();
        let lbs = elb.describe_load_balancers().names("gitlab-ha-staging-gitaly").send().await.unwrap();
        let gitaly_dns = lbs.load_balancers()[0].dns_name().unwrap().to_string();
        let obj = s3.get_object().bucket("acme-gitlab-staging-config").key("gitlab.rb").send().await.unwrap();
        let rb = String::from_utf8(obj.body.collect().await.unwrap().into_bytes().to_vec()).unwrap();
        for line in [
            "nginx['listen_port'] = 80".to_string(),
            "nginx['listen_https'] = false".to_string(),
            "gitaly['enable'] = false".to_string(),
            format!("    'gitaly_address' => 'tcp://{gitaly_dns}:8075',"),
            "registry_external_url 'https://gitlab.staging.example.internal:5050'".to_string(),
            "registry_nginx['listen_https'] = false".to_string(),
            "high_availability['mountpoint'] = ['/mnt/efs']".to_string(),
        ] {
            assert!(rb.lines().any(|l| l == line), "missing `{line}` in gitlab.rb:\n{rb}");
        }
        let mut prefixes: Vec<&str> = rb
            .lines()
            .filter(|l| l.starts_with("gitlab_rails['object_store']['objects']"))
            .map(|l| l.rsplit(" = ").next().unwrap())
            .collect();
        assert_eq!(prefixes.len(), 9, "{rb}");
        assert!(prefixes.iter().all(|p| p.starts_with("'acme-gitlab-staging-objects/")), "{prefixes:?}");
        prefixes.sort();
        prefixes.dedup();
        assert_eq!(prefixes.len(), 9, "no two object types share a prefix");

        // User data: no secret value, and every boot script stops at the
        // first failure (and writes secret files from a 077 umask).
        let token = sm
            .get_secret_value()
            .secret_id("gitlab-ha/staging/gitaly-token")
            .send()
            .await
            .unwrap()
            .secret_string()
            .unwrap()
            .to_string();
        assert_eq!(token.len(), 64, "Secrets Manager generated the Gitaly token");
        for lt in lts.launch_templates() {
            let ud = user_data_of(&ec2, lt.launch_template_id().unwrap()).await;
            assert!(!ud.contains(&token), "{:?} holds the Gitaly token", lt.launch_template_name());
            assert!(!rb.contains(&token), "gitlab.rb holds the Gitaly token");
            let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&ud).expect("user data is YAML");
            let runcmd = doc["runcmd"].as_sequence().expect("runcmd");
            let scripts: Vec<&str> = doc["write_files"]
                .as_sequence()
                .unwrap()
                .iter()
                .filter_map(|f| f["content"].as_str())
                .filter(|c| c.starts_with("#!/bin/bash"))
                .collect();
            assert!(!scripts.is_empty(), "{ud}");
            for s in scripts {
                assert!(s.contains("\nset -euo pipefail\n"), "{s}");
                // And it parses: `bash -n` reads without running.
                let mut bash = std::process::Command::new("bash")
                    .arg("-n")
                    .stdin(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                std::io::Write::write_all(&mut bash.stdin.take().unwrap(), s.as_bytes()).unwrap();
                let out = bash.wait_with_output().unwrap();
                assert!(out.status.success(), "{}\n{s}", String::from_utf8_lossy(&out.stderr));
            }
            for cmd in runcmd {
                let cmd = serde_yaml_ng::to_string(cmd).unwrap();
                assert!(
                    cmd.contains("/usr/local/sbin/converge-") || cmd.contains("daemon-reload"),
                    "unguarded runcmd {cmd}"
                );
            }
        }
    });
}

#[test]
fn a_password_from_the_environment_goes_to_rds_only() {
    // The shipped stack lets RDS manage the password; a user may still
    // bring their own through `${env.NAME}`.
    let moto = Moto::start();
    let dir = Scratch::new("password");
    let stack = dir.write(
        "db.yaml",
        "stack: pw\nregion: eu-west-1\nresources:\n  vpc:\n    type: ec2.vpc\n    properties:\n      cidr_block: 10.50.0.0/16\n  a:\n    type: ec2.subnet\n    properties:\n      vpc_id: ${resources.vpc.id}\n      cidr_block: 10.50.1.0/24\n      availability_zone: eu-west-1a\n  b:\n    type: ec2.subnet\n    properties:\n      vpc_id: ${resources.vpc.id}\n      cidr_block: 10.50.2.0/24\n      availability_zone: eu-west-1b\n  subnets:\n    type: rds.db_subnet_group\n    properties:\n      subnet_ids: [\"${resources.a.id}\", \"${resources.b.id}\"]\n  db:\n    type: rds.db_instance\n    protect: false\n    properties:\n      engine: postgres\n      engine_version: \"16.4\"\n      instance_class: db.t4g.micro\n      allocated_storage: 20\n      db_subnet_group_name: ${resources.subnets.name}\n      master_username: app\n      vpc_security_group_ids: []\n      master_password: ${env.GITLAB_DB_PASSWORD}\n      deletion_protection: false\n      skip_final_snapshot: true\n",
    );
    let s = path_str(&stack);
    let trace =
        |args: &[&str]| harness::Run::from(moto.converge().env("RUST_LOG", "trace").args(args).output().unwrap());
    let mut runs = vec![moto.run(&["validate", s]).expect(0)];
    let r = moto.run(&["plan", s, "--detailed-exitcode"]).expect(2);
    assert!(r.stdout.contains("+ master_password             = (sensitive)"), "{}", r.stdout);
    runs.push(r);
    runs.push(moto.run(&["plan", s, "--format", "json", "-v"]).expect(0));
    runs.push(trace(&["plan", s]).expect(0));
    // A saved plan, Markdown and GitLab's report: the secret is a reference
    // in the file, read again at apply; without it, apply refuses offline.
    let (saved, report) = (dir.path("plan.cvp"), dir.path("report.json"));
    let (saved, report) = (path_str(&saved), path_str(&report));
    runs.push(trace(&["plan", s, "--out", saved, "--format", "markdown", "--gitlab-report", report]).expect(0));
    assert!(std::fs::read_to_string(saved).unwrap().contains("\"GITLAB_DB_PASSWORD\""), "no reference to the secret");
    let mark = moto.calls().len();
    let r =
        harness::Run::from(moto.converge().env_remove("GITLAB_DB_PASSWORD").args(["apply", saved]).output().unwrap())
            .expect(1);
    assert!(r.stderr.contains("needs environment variable `GITLAB_DB_PASSWORD`, which is not set"), "{}", r.stderr);
    assert_eq!(moto.calls().len(), mark, "apply without the secret called AWS");
    runs.push(r);
    runs.push(trace(&["apply", saved, "-v"]).expect(0));
    runs.push(trace(&["plan", s, "--detailed-exitcode", "-v"]).expect(0));
    for format in ["text", "json", "markdown"] {
        runs.push(trace(&["drift", s, "--format", format, "-v"]).expect(0));
    }
    // Where the value is read back and re-sent: a changed setting updates
    // the instance (ModifyDBInstance), still without showing it.
    let bigger = dir.write(
        "bigger.yaml",
        &std::fs::read_to_string(&stack).unwrap().replace("allocated_storage: 20", "allocated_storage: 30"),
    );
    runs.push(trace(&["drift", path_str(&bigger), "--format", "json"]).expect(2));
    runs.push(trace(&["drift", path_str(&bigger), "--format", "markdown"]).expect(2));
    runs.push(trace(&["apply", path_str(&bigger), "--auto-approve", "-v"]).expect(0));
    let rds = moto.rds();
    let ec2 = moto.ec2();
    rt().block_on(async {
        for db in rds.describe_db_instances().send().await.unwrap().db_instances() {
            assert!(!format!("{db:?}").contains(DB_PASSWORD), "the password is in the DB's description");
        }
        let tags = ec2.describe_tags().send().await.unwrap();
        assert!(!format!("{tags:?}").contains(DB_PASSWORD), "the password is in a tag");
    });
    runs.push(trace(&["destroy", path_str(&bigger), "--auto-approve", "--allow-destroy", "db", "-v"]).expect(0));
    for run in &runs {
        assert!(
            !run.stdout.contains(DB_PASSWORD) && !run.stderr.contains(DB_PASSWORD),
            "the password leaked:\n{run:?}"
        );
    }
    // Nor in any file converge wrote: locks, state, beside the stack.
    for root in [&moto.dir.0, &dir.0] {
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.file_name().is_some_and(|n| n != "requests.jsonl" && n != "moto.out") {
                    let bytes = std::fs::read(&p).unwrap();
                    assert!(
                        !bytes.windows(DB_PASSWORD.len()).any(|w| w == DB_PASSWORD.as_bytes()),
                        "the password is in {}",
                        p.display()
                    );
                }
            }
        }
    }
    // The trace logs were long: the check looked at real output.
    assert!(runs.iter().map(|r| r.stderr.len()).sum::<usize>() > 100_000, "RUST_LOG=trace logged little");
}

/// When moto saw `operation` for `group` first / last.
fn first_call(moto: &Moto, operation: &str, group: &str) -> f64 {
    let calls = moto.calls();
    let c = calls.iter().find(|c| c.operation == operation && c.group.as_deref() == Some(group));
    c.unwrap_or_else(|| panic!("no {operation} for {group}")).t
}

#[test]
fn migrations_run_before_the_app_nodes_are_touched() {
    // As on AWS, a group's instances are Pending for a while before they
    // serve, and an instance refresh takes time: converge must wait for the
    // migration node (InService, healthy in its target groups) before it
    // creates or refreshes the app group.
    const WARMUP: f64 = 3.0;
    let moto = Moto::start_with(&["--asg-warmup-seconds", "3"]);
    let migrate = "gitlab-ha-staging-gitlab-migrate";
    let app = "gitlab-ha-staging-gitlab-app";
    apply(&moto, STACK);
    let created = first_call(&moto, "CreateAutoScalingGroup", migrate);
    let app_created = first_call(&moto, "CreateAutoScalingGroup", app);
    assert!(
        app_created >= created + WARMUP,
        "the app group was created {:.1}s after the migration group, before its node was InService",
        app_created - created
    );
    // What decided it: the migration group's instances seen InService.
    let waited = moto
        .calls()
        .iter()
        .filter(|c| c.operation == "DescribeAutoScalingGroups" && c.group.as_deref() == Some(migrate))
        .filter(|c| c.t > created && c.t < app_created)
        .count();
    assert!(waited >= 2, "converge polled the migration group {waited} times");
    let instances = rt().block_on(async {
        let g = moto.autoscaling().describe_auto_scaling_groups().auto_scaling_group_names(migrate).send().await;
        g.unwrap().auto_scaling_groups()[0]
            .instances()
            .iter()
            .map(|i| i.lifecycle_state().unwrap().as_str().to_string())
            .collect::<Vec<_>>()
    });
    assert_eq!(instances, ["InService"]);

    // A gitlab.rb change refreshes both groups: the app group's refresh
    // starts only after the migration group's has finished.
    let dir = Scratch::beside_stacks("order");
    let template = std::fs::read_to_string(harness::repo().join("templates/gitlab.rb.j2")).unwrap();
    dir.write("gitlab.rb.j2", &format!("{template}gitlab_rails['time_zone'] = 'UTC'\n"));
    let edited =
        stack_variant(&dir, "edited.yaml", &[("$template: ../templates/gitlab.rb.j2", "$template: gitlab.rb.j2")]);
    let mark = moto.calls().len();
    apply(&moto, path_str(&edited));
    let since: Vec<harness::Call> = moto.calls().into_iter().skip(mark).collect();
    let at = |op: &str, group: &str| {
        since
            .iter()
            .find(|c| c.operation == op && c.group.as_deref() == Some(group))
            .unwrap_or_else(|| panic!("no {op} for {group}"))
            .t
    };
    let migrate_refresh = at("StartInstanceRefresh", migrate);
    let app_touched = since
        .iter()
        .filter(|c| c.mutating && c.group.as_deref() == Some(app))
        .map(|c| c.t)
        .fold(f64::INFINITY, f64::min);
    assert!(
        app_touched >= migrate_refresh + WARMUP,
        "the app group was touched {:.1}s after the migration refresh started, before it finished",
        app_touched - migrate_refresh
    );
    // And apply returned only once the app group's refresh was done too.
    let app_refresh = at("StartInstanceRefresh", app);
    let last = since.last().unwrap().t;
    assert!(last >= app_refresh + WARMUP, "apply did not wait for the app refresh");
    plan(&moto, path_str(&edited)).expect(0);
}

/// Issue 25 (`ignore_changes`): the GitLab stack's app group starts at
/// `app_min` and leaves its desired capacity to the CPU policy. Scaling
/// moves it (here, an independent client): plan shows nothing, drift finds
/// nothing, a saved plan made before the move still applies, and an update
/// of another setting leaves the capacity where scaling put it. Without
/// the line, the same move is planned back (the control). A name the kind
/// does not have is refused offline, placed, with the near one.
#[test]
fn ignored_desired_capacity_is_left_to_scaling() {
    let moto = Moto::start();
    let dir = Scratch::beside_stacks("ignore");
    let group = "gitlab-ha-staging-gitlab-app";
    apply(&moto, STACK);
    let scale_to = |n: i32| {
        rt().block_on(
            moto.autoscaling().set_desired_capacity().auto_scaling_group_name(group).desired_capacity(n).send(),
        )
        .unwrap();
    };
    let read = || {
        rt().block_on(async {
            let out = moto.autoscaling().describe_auto_scaling_groups().auto_scaling_group_names(group).send().await;
            let g = out.unwrap().auto_scaling_groups()[0].clone();
            (g.desired_capacity().unwrap(), g.health_check_grace_period().unwrap())
        })
    };
    assert_eq!(read(), (1, 300), "created at app_min");

    // Scaled out: nothing to plan, no drift.
    scale_to(2);
    let r = plan(&moto, STACK).expect(0);
    assert!(r.stdout.contains("No changes."), "{}", r.stdout);
    let r = moto.run(&["drift", STACK, "--env", "staging"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);

    // The control: without `ignore_changes`, the same move is planned back.
    let unignored = stack_variant(&dir, "unignored.yaml", &[("    ignore_changes: [desired_capacity]\n", "")]);
    let r = plan(&moto, path_str(&unignored)).expect(2);
    assert!(r.stdout.contains("      ~ desired_capacity = 2 → 1\n"), "{}", r.stdout);

    // A reviewed change to another setting, saved; scaling moves the
    // capacity before the apply: the plan is not stale, and the update
    // leaves the capacity where scaling put it.
    let grace = stack_variant(
        &dir,
        "grace.yaml",
        &[("      health_check_grace_period: 300\n", "      health_check_grace_period: 301\n")],
    );
    let saved = dir.path("grace.plan.json");
    let r = moto.run(&["plan", path_str(&grace), "--env", "staging", "--out", path_str(&saved)]).expect(0);
    assert!(r.stdout.contains("~ gitlab_app (autoscaling.group"), "{}", r.stdout);
    assert!(!r.stdout.contains("desired_capacity"), "{}", r.stdout);
    scale_to(1);
    let r = moto.run(&["apply", path_str(&saved)]).expect(0);
    assert!(r.stdout.contains("Apply complete: 0 created, 1 updated"), "{}", r.stdout);
    assert_eq!(read(), (1, 301));
    scale_to(2);
    let r = moto.run(&["apply", path_str(&grace), "--env", "staging", "--auto-approve"]).expect(0);
    assert!(r.stdout.contains("No changes."), "{}", r.stdout);
    let back = stack_variant(&dir, "back.yaml", &[]);
    let r = moto.run(&["apply", path_str(&back), "--env", "staging", "--auto-approve"]).expect(0);
    assert!(r.stdout.contains("1 updated"), "{}", r.stdout);
    assert_eq!(read(), (2, 300), "the update of the grace period kept the scaled capacity");

    // Refused offline: a property the kind does not have.
    let typo = stack_variant(
        &dir,
        "typo.yaml",
        &[("    ignore_changes: [desired_capacity]\n", "    ignore_changes: [desired_capacty]\n")],
    );
    let mark = moto.calls().len();
    let r = moto.run(&["plan", path_str(&typo), "--env", "staging"]).expect(1);
    assert!(
        r.stderr.contains("error: `ignore_changes`: autoscaling.group has no property `desired_capacty`")
            && r.stderr.contains("desired_capacity"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(&format!("{}:", typo.display())), "placed: {}", r.stderr);
    assert_eq!(moto.calls().len(), mark, "a bad spec made AWS calls");
}

/// Does an ARN pattern of a backup selection (`*` any run of characters)
/// match `arn`? AWS Backup's own matching, for the selection check.
fn arn_matches(pattern: &str, arn: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = arn;
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(p) else { return false };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(p);
        } else {
            let Some(at) = rest.find(p) else { return false };
            rest = &rest[at + p.len()..];
        }
    }
    rest.is_empty()
}

#[test]
fn backups_select_the_data_tier_and_a_restore_replaces_only_what_it_restores() {
    let moto = Moto::start();
    apply(&moto, STACK);
    let volume = rt().block_on(async {
        // The vault, the plan and its one selection, read independently.
        let backup = moto.backup();
        let vaults = backup.list_backup_vaults().send().await.unwrap();
        let names: Vec<&str> = vaults.backup_vault_list().iter().filter_map(|v| v.backup_vault_name()).collect();
        assert_eq!(names, ["gitlab-ha-staging-backup-vault"]);
        let plans = backup.list_backup_plans().send().await.unwrap();
        assert_eq!(plans.backup_plans_list().len(), 1);
        let plan_id = plans.backup_plans_list()[0].backup_plan_id().unwrap();
        let plan = backup.get_backup_plan().backup_plan_id(plan_id).send().await.unwrap();
        let rule = &plan.backup_plan().unwrap().rules()[0];
        assert_eq!(rule.target_backup_vault_name(), "gitlab-ha-staging-backup-vault");
        assert_eq!(rule.schedule_expression(), Some("cron(0 5 * * ? *)"));
        assert_eq!(rule.lifecycle().and_then(|l| l.delete_after_days()), Some(7), "staging keeps a week");
        let tags = backup.list_tags().resource_arn(plan.backup_plan_arn().unwrap()).send().await.unwrap();
        assert_eq!(tags.tags().and_then(|t| t.get("converge:resource")).map(String::as_str), Some("backup_plan"));
        let sels = backup.list_backup_selections().backup_plan_id(plan_id).send().await.unwrap();
        assert_eq!(sels.backup_selections_list().len(), 1);
        let sel = backup
            .get_backup_selection()
            .backup_plan_id(plan_id)
            .selection_id(sels.backup_selections_list()[0].selection_id().unwrap())
            .send()
            .await
            .unwrap();
        let sel = sel.backup_selection().unwrap();
        let role = moto.iam().get_role().role_name("gitlab-ha-staging-backup-role").send().await.unwrap();
        assert_eq!(sel.iam_role_arn(), role.role().unwrap().arn());
        let conditions: BTreeMap<String, String> = sel
            .conditions()
            .unwrap()
            .string_equals()
            .iter()
            .map(|c| {
                let key = c.condition_key().unwrap().strip_prefix("aws:ResourceTag/").unwrap().to_string();
                (key, c.condition_value().unwrap().to_string())
            })
            .collect();

        // What it selects: every tagged object of the stack whose ARN a
        // pattern matches and whose tags meet every condition (AND, as AWS
        // Backup joins Resources and Conditions) is the volume, the DB and
        // EFS, and nothing else.
        let pages: Vec<_> = moto.tagging().get_resources().into_paginator().send().collect().await;
        let all: Vec<_> =
            pages.into_iter().flat_map(|p| p.unwrap().resource_tag_mapping_list.unwrap_or_default()).collect();
        let mut selected: Vec<String> = all
            .iter()
            .filter(|m| sel.resources().iter().any(|p| arn_matches(p, m.resource_arn().unwrap())))
            .filter(|m| {
                let tags: BTreeMap<&str, &str> = m.tags().iter().map(|t| (t.key(), t.value())).collect();
                conditions.iter().all(|(k, v)| tags.get(k.as_str()) == Some(&v.as_str()))
            })
            .map(|m| m.resource_arn().unwrap().to_string())
            .collect();
        selected.sort();
        let db = moto.rds().describe_db_instances().send().await.unwrap();
        let db_arn = db.db_instances()[0].db_instance_arn().unwrap().to_string();
        let fs = moto.efs().describe_file_systems().send().await.unwrap();
        let fs_arn = fs.file_systems()[0].file_system_arn().unwrap().to_string();
        let vols = moto.ec2().describe_volumes().set_filters(Some(tagged_filter("gitaly_data"))).send().await.unwrap();
        let volume = vols.volumes()[0].volume_id().unwrap().to_string();
        let mut expected = vec![db_arn, fs_arn, format!("arn:aws:ec2:eu-west-1:123456789012:volume/{volume}")];
        expected.sort();
        assert_eq!(selected, expected, "the selection is the database, EFS and the repositories volume");
        // GitLab's disk guidance for Gitaly, as provisioned.
        assert_eq!((vols.volumes()[0].iops(), vols.volumes()[0].throughput()), (Some(8000), Some(500)));

        // gitlab.rb uploads gitlab-backup's archives to the backups bucket,
        // whose lifecycle expires them with the recovery points.
        let s3 = moto.s3();
        let rb = s3.get_object().bucket("acme-gitlab-staging-config").key("gitlab.rb").send().await.unwrap();
        let rb = String::from_utf8(rb.body.collect().await.unwrap().to_vec()).unwrap();
        assert!(rb.contains("gitlab_rails['backup_upload_remote_directory'] = 'acme-gitlab-staging-backups'"), "{rb}");
        let lc = s3.get_bucket_lifecycle_configuration().bucket("acme-gitlab-staging-backups").send().await.unwrap();
        assert_eq!(lc.rules()[0].expiration().and_then(|e| e.days()), Some(7));
        volume
    });
    moto.run(&["plan", STACK, "--env", "staging", "--detailed-exitcode"]).expect(0);
    // And a second apply is a no-op: not one mutating call.
    let mark = moto.calls().len();
    apply(&moto, STACK);
    assert!(moto.mutating_since(mark).is_empty(), "{:?}", moto.mutating_since(mark));

    // A restore: the database from a DB snapshot, the volume from an EBS
    // snapshot. The plan replaces those two and no other object; what
    // follows from their new ids and secret is updated in place.
    let snapshot = rt().block_on(async {
        let rds = moto.rds();
        rds.create_db_snapshot()
            .db_snapshot_identifier("gitlab-before")
            .db_instance_identifier("gitlab-ha-staging-db")
            .send()
            .await
            .unwrap();
        let snap = moto.ec2().create_snapshot().volume_id(&volume).send().await.unwrap();
        snap.snapshot_id().unwrap().to_string()
    });
    let dir = Scratch::beside_stacks("restore");
    let out = dir.path("plan.json");
    let vars = ["--var", "db_snapshot=gitlab-before", "--var", &format!("gitaly_snapshot={snapshot}")];
    let mut args = vec!["plan", STACK, "--env", "staging", "--format", "json", "--out", path_str(&out)];
    args.extend(vars);
    moto.run(&args).expect(0);
    let plan: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let by_action = |action: &str| -> Vec<String> {
        let mut v: Vec<String> = plan["plan"]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["action"] == action)
            .map(|r| r["address"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(by_action("replace"), ["ec2.volume.gitaly_data", "rds.db_instance.db"], "{plan:#}");
    assert_eq!((by_action("create"), by_action("delete")), (vec![], vec![]), "{plan:#}");

    let mut args = vec!["apply", STACK, "--env", "staging", "--auto-approve", "--allow-destroy", "db"];
    args.extend(["--allow-destroy", "gitaly_data"]);
    args.extend(vars);
    moto.run(&args).expect(0);
    rt().block_on(async {
        let db =
            moto.rds().describe_db_instances().db_instance_identifier("gitlab-ha-staging-db").send().await.unwrap();
        let db = &db.db_instances()[0];
        let from = db.tag_list().iter().find(|t| t.key() == Some("converge:restored-from")).and_then(|t| t.value());
        assert_eq!(from, Some("snapshot:gitlab-before"), "the restore call recorded its source");
        assert!(db.master_user_secret().is_some(), "RDS manages the restored instance's password again");
        let vols = moto.ec2().describe_volumes().set_filters(Some(tagged_filter("gitaly_data"))).send().await.unwrap();
        assert_eq!(vols.volumes().len(), 1);
        assert_eq!(vols.volumes()[0].snapshot_id(), Some(snapshot.as_str()), "built from the snapshot");
        assert_ne!(vols.volumes()[0].volume_id(), Some(volume.as_str()));
    });
    let mut args = vec!["plan", STACK, "--env", "staging", "--detailed-exitcode"];
    args.extend(vars);
    moto.run(&args).expect(0);
}

/// Issue 23 (secrets restorable after losing the region): a secret with
/// `replica_regions` is replicated by its create, a replica added and one
/// removed in place, each plan after clean; an independent Secrets Manager
/// client in each region reads the replicas (and their tags); a destroy
/// removes the replicas first, as Secrets Manager requires.
#[test]
fn secrets_are_replicated_to_the_backup_region_and_back() {
    let moto = Moto::start();
    let dir = Scratch::beside_stacks("replicas");
    let stack = |regions: &str| {
        let text = format!(
            "stack: replicas\nregion: eu-west-1\nresources:\n  keys:\n    type: secretsmanager.secret\n    properties:\n      description: host keys\n      recovery_window_days: 0\n      replica_regions: {regions}\n"
        );
        dir.write("replicas.yaml", &text)
    };
    let in_region = |region: &str| {
        let conf = moto
            .secretsmanager()
            .config()
            .to_builder()
            .region(aws_sdk_secretsmanager::config::Region::new(region.to_string()))
            .build();
        aws_sdk_secretsmanager::Client::from_conf(conf)
    };
    let replicas = || {
        let d =
            rt().block_on(moto.secretsmanager().describe_secret().secret_id("replicas-default-keys").send()).unwrap();
        let mut r: Vec<String> = d.replication_status().iter().map(|s| s.region().unwrap().to_string()).collect();
        r.sort();
        r
    };
    let file = stack("[eu-central-1]");
    moto.run(&["apply", path_str(&file), "--auto-approve"]).expect(0);
    assert_eq!(replicas(), ["eu-central-1"]);
    let replica =
        rt().block_on(in_region("eu-central-1").describe_secret().secret_id("replicas-default-keys").send()).unwrap();
    assert_eq!(replica.primary_region(), Some("eu-west-1"));
    assert!(replica.tags().iter().any(|t| t.key() == Some("converge:stack") && t.value() == Some("replicas")));
    moto.run(&["plan", path_str(&file), "--detailed-exitcode"]).expect(0);

    let file = stack("[us-east-1, eu-central-1]");
    let r = moto.run(&["plan", path_str(&file), "--detailed-exitcode"]).expect(2);
    assert!(r.stdout.contains("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy."), "{}", r.stdout);
    moto.run(&["apply", path_str(&file), "--auto-approve"]).expect(0);
    assert_eq!(replicas(), ["eu-central-1", "us-east-1"]);
    let file = stack("[us-east-1]");
    moto.run(&["apply", path_str(&file), "--auto-approve"]).expect(0);
    assert_eq!(replicas(), ["us-east-1"]);
    moto.run(&["plan", path_str(&file), "--detailed-exitcode"]).expect(0);

    moto.run(&["destroy", path_str(&file), "--auto-approve"]).expect(0);
    let calls: Vec<String> = moto.calls().into_iter().map(|c| c.operation).collect();
    let removed = calls.iter().rposition(|c| c == "RemoveRegionsFromReplication").expect("replicas removed");
    let deleted = calls.iter().rposition(|c| c == "DeleteSecret").expect("secret deleted");
    assert!(removed < deleted, "the replicas go first: {calls:?}");
    let gone = rt().block_on(moto.secretsmanager().describe_secret().secret_id("replicas-default-keys").send());
    assert!(gone.is_err(), "deleted");
}
