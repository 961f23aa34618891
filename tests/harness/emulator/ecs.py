"""ECS: deployments that complete, one-off tasks that stop, and their exit codes (POST /moto-api/converge/task-exit)."""

import json


def fix_ecs_deployments():
    """ECS services deploy, as on AWS. moto 5.2.5's services never run
    tasks: a deployment stays IN_PROGRESS with runningCount 0, and
    UpdateService changes the service's task definition but leaves the
    PRIMARY deployment on the old one. Here a deployment completes as soon
    as it starts (the service's task definition is registered and ACTIVE):
    CreateService, and an UpdateService that changes the task definition or
    forces a new deployment, make a new PRIMARY deployment of that revision,
    COMPLETED with desiredCount tasks running; the one it replaces is
    dropped, as ECS drops a finished deployment's old ACTIVE entry.

    As ECS does, CreateService and UpdateService refuse an INACTIVE
    (deregistered) revision: ClientException "TaskDefinition is inactive".
    DescribeTaskDefinition with a family and no revision answers the
    latest ACTIVE revision (moto answers the latest, deregistered or not).
    CreateService keeps deploymentConfiguration and
    healthCheckGracePeriodSeconds (moto drops them), so DescribeServices
    reports them as ECS does."""
    from moto.ecs import models
    from moto.ecs.exceptions import EcsClientException, TaskDefinitionNotFoundException
    from moto.ecs.responses import EC2ContainerServiceResponse

    backend = models.EC2ContainerServiceBackend

    def active(self, task_definition_str):
        if not task_definition_str:
            return
        if self.describe_task_definition(task_definition_str).status != "ACTIVE":
            raise EcsClientException("TaskDefinition is inactive")

    def deploy(service):
        now = models.utcnow()
        deployment_id = f"ecs-svc/{models.mock_random.randint(0, 32**12)}"
        service.running_count = service.desired_count
        service.pending_count = 0
        service.deployments = [{
            "createdAt": now,
            "desiredCount": service.desired_count,
            "failedTasks": 0,
            "id": deployment_id,
            "launchType": service.launch_type,
            "pendingCount": 0,
            "rolloutState": "COMPLETED",
            "rolloutStateReason": f"ECS deployment {deployment_id} completed.",
            "runningCount": service.desired_count,
            "platformVersion": service.platform_version,
            "networkConfiguration": service.network_configuration or None,
            "platformFamily": "EC2" if service.launch_type == "EC2" else "FARGATE",
            "status": "PRIMARY",
            "taskDefinition": service.task_definition,
            "updatedAt": now,
        }]
        service.events.insert(0, {
            "id": deployment_id.split("/")[-1],
            "createdAt": now,
            "message": f"(service {service.name}) has reached a steady state.",
        })

    original_create = backend.create_service

    def create_service(self, cluster_str, service_name, desired_count, task_definition_str=None, *args, **kwargs):
        active(self, task_definition_str)
        service = original_create(self, cluster_str, service_name, desired_count, task_definition_str, *args, **kwargs)
        if service.deployment_controller.get("type", "ECS") == "ECS":
            deploy(service)
        return service

    original_update = backend.update_service

    def update_service(self, props):
        task_definition_str = props.get("task_definition")
        forced = props.get("force_new_deployment", False)
        active(self, task_definition_str)
        service = original_update(self, props)
        if task_definition_str or forced or "desired_count" in props:
            if service.deployment_controller.get("type", "ECS") == "ECS":
                deploy(service)
        return service

    original_describe = backend.describe_task_definition

    def describe_task_definition(self, task_definition_str):
        name = task_definition_str.split("/")[-1]
        if ":" in name:
            return original_describe(self, task_definition_str)
        revisions = [t for _, t in sorted(self.task_definitions.get(name, {}).items()) if t.status == "ACTIVE"]
        if not revisions:
            raise TaskDefinitionNotFoundException()
        return revisions[-1]

    original_create_response = EC2ContainerServiceResponse.create_service

    def create_service_response(self):
        result = original_create_response(self)
        service = result.result["service"]
        config = self._get_param("deploymentConfiguration")
        if config is not None:
            service.deployment_configuration = config
        grace = self._get_param("healthCheckGracePeriodSeconds")
        if grace is not None:
            service.health_check_grace_period_seconds = grace
        return result

    backend.create_service = create_service
    backend.update_service = update_service
    backend.describe_task_definition = describe_task_definition
    EC2ContainerServiceResponse.create_service = create_service_response


# family → (exit code, container reason) of the one-off tasks RunTask
# starts: POST /moto-api/converge/task-exit.
TASK_EXITS = {}


def fix_ecs_run_task():
    """One-off tasks stop by their first DescribeTasks, with the exit code
    a test set for their family (TASK_EXITS; 0 otherwise)."""
    from moto.ecs import models

    backend = models.EC2ContainerServiceBackend
    original_run = backend.run_task
    original_describe = backend.describe_tasks

    def run_task(self, *args, **kwargs):
        tasks = original_run(self, *args, **kwargs)
        for task in tasks:
            task.converge_one_off = True
        return tasks

    def finish(task):
        family = task.task_definition_arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]
        code, reason = TASK_EXITS.get(family, (0, None))
        task.status = "STOPPED"
        task.desired_status = "STOPPED"
        task.stop_code = "EssentialContainerExited"
        task.stopped_reason = "Essential container in task exited"
        for container in task.containers:
            container.last_status = "STOPPED"
            container.exitCode = code
            container.exit_code = code
            if reason:
                container.reason = reason

    def describe_tasks(self, cluster_str, tasks):
        found = original_describe(self, cluster_str, tasks)
        for task in found:
            if getattr(task, "converge_one_off", False) and task.status != "STOPPED":
                finish(task)
        return found

    # A Fargate task's size is the task definition's; its containers need
    # no memory of their own (ECS Developer Guide, Fargate task
    # definitions). moto 5.2.5's RunTask adds None to an int for such a
    # container and answers 500: it counts as 0 here.
    from types import SimpleNamespace

    original_requirements = backend._calculate_task_resource_requirements
    sized = ("memory", "Memory", "memoryReservation", "MemoryReservation")

    def requirements(task_definition):
        containers = [
            c if any(c.get(k) is not None for k in sized) else dict(c, memory=0)
            for c in task_definition.container_definitions
        ]
        return original_requirements(SimpleNamespace(container_definitions=containers))

    backend.run_task = run_task
    backend.describe_tasks = describe_tasks
    backend._calculate_task_resource_requirements = staticmethod(requirements)


def set_task_exit(environ, start_response):
    """POST /moto-api/converge/task-exit: how a family's one-off tasks end."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = json.loads(environ["wsgi.input"].read(length) or b"{}")
    if body.get("exit_code") is None:
        TASK_EXITS.pop(body["family"], None)
    else:
        TASK_EXITS[body["family"]] = (int(body["exit_code"]), body.get("reason"))
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b"{}"]
