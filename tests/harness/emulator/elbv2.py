"""ELBv2: idempotent CreateLoadBalancer and CreateTargetGroup."""


def fix_elbv2_idempotency():
    """ELBv2 CreateLoadBalancer and CreateTargetGroup are idempotent (ELBv2
    API reference): a repeated call with the same name and settings returns
    the existing object, one with the same name and other settings fails
    with DuplicateLoadBalancerName / DuplicateTargetGroupName. moto 5.2.5
    creates a second load balancer with the same name (its check compares
    ARNs, which hold a random id), and refuses a repeated target group."""
    from moto.elbv2.exceptions import DuplicateLoadBalancerName, DuplicateTargetGroupName
    from moto.elbv2.models import ELBv2Backend

    create_lb = ELBv2Backend.create_load_balancer
    create_tg = ELBv2Backend.create_target_group

    def load_balancer(self, name, security_groups, subnet_ids, subnet_mappings=None, scheme="internet-facing",
                      loadbalancer_type=None, ip_address_type="ipv4", tags=None):
        wanted = sorted(list(subnet_ids or []) + [m["SubnetId"] for m in subnet_mappings or []])
        for lb in self.load_balancers.values():
            if lb.name == name:
                same = (
                    lb.scheme == (scheme or "internet-facing")
                    and (lb.loadbalancer_type or "application") == (loadbalancer_type or "application")
                    and sorted(s.id for s in lb.subnets) == wanted
                )
                if same:
                    return lb
                raise DuplicateLoadBalancerName()
        return create_lb(self, name, security_groups, subnet_ids, subnet_mappings, scheme, loadbalancer_type,
                         ip_address_type, tags)

    def target_group(self, name, **kwargs):
        for tg in self.target_groups.values():
            if tg.name == name:
                port = kwargs.get("port")
                same = (
                    tg.vpc_id == kwargs.get("vpc_id")
                    and (tg.protocol or None) == (kwargs.get("protocol") or None)
                    and (port is None or str(tg.port) == str(port))
                )
                if same:
                    return tg
                raise DuplicateTargetGroupName()
        return create_tg(self, name, **kwargs)

    ELBv2Backend.create_load_balancer = load_balancer
    ELBv2Backend.create_target_group = target_group
