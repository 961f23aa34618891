"""AWS Backup: UpdateBackupPlan and the backup selections, which moto lacks."""

import json


BACKUP_SELECTIONS = {}  # (account, region) -> {plan id: {selection id: selection}}


def add_backup_calls():
    """AWS Backup as its API reference describes it, where moto 5.2.5 falls
    short: UpdateBackupPlan and the backup selections (CreateBackupSelection,
    GetBackupSelection, ListBackupSelections, DeleteBackupSelection) answer
    NotImplemented there; DeleteBackupPlan deletes a plan that still has
    selections (AWS refuses: InvalidRequestException); a deleted plan's name
    could not be used again (moto compares against deleted plans too);
    plans are missing from the Resource Groups Tagging API
    (`backup:backup-plan`), so a plan removed from a spec was never found;
    and ListTags read its ARN from `/tags/{arn}/` only, where the AWS SDK
    for Rust sends `/tags/{arn}` (AWS answers both): without the slash
    moto answered every ARN with no tags."""
    import json
    from urllib.parse import unquote

    from moto.backup.exceptions import AlreadyExistsException, InvalidRequestException, ResourceNotFoundException
    from moto.backup.models import BackupBackend, Plan
    from moto.backup.responses import BackupResponse
    from moto.core.resource_tagging import TaggedResource
    from moto.core.utils import unix_time
    from moto.moto_api._internal import mock_random

    def live_plan(backend, plan_id):
        plan = backend.plans.get(plan_id)
        if plan is None or plan.deletion_date is not None:
            raise ResourceNotFoundException(msg=f"Failed reading Backup plan with provided version: {plan_id}")
        return plan

    def selections(backend, plan_id):
        return BACKUP_SELECTIONS.setdefault((backend.account_id, backend.region_name), {}).setdefault(plan_id, {})

    def plan_and_rest(self):
        # /backup/plans/{plan}/selections/[{selection}]
        parts = [unquote(p) for p in self.path.split("?")[0].split("/") if p]
        return parts[2], parts[4] if len(parts) > 4 else None

    create_plan = BackupBackend.create_backup_plan

    def create_backup_plan(self, backup_plan, backup_plan_tags, creator_request_id):
        taken = [p for p in self.plans.values() if p.deletion_date is None]
        if any(p.backup_plan["BackupPlanName"] == backup_plan["BackupPlanName"] for p in taken):
            raise AlreadyExistsException(msg="Backup plan with the same plan document already exists")
        deleted = {k: v for k, v in self.plans.items() if v.deletion_date is not None}
        for k in deleted:
            del self.plans[k]
        try:
            return create_plan(self, backup_plan, backup_plan_tags, creator_request_id)
        finally:
            self.plans.update(deleted)

    delete_plan = BackupBackend.delete_backup_plan

    def delete_backup_plan(self, backup_plan_id):
        if selections(self, backup_plan_id):
            raise InvalidRequestException(msg="Related backup plan selections must be deleted prior to backup plan deletion")
        return delete_plan(self, backup_plan_id)

    own = BackupBackend.iter_tagged_resources

    def iter_tagged_resources(self):
        yield from own(self)
        for plan in list(self.plans.values()):
            if plan.deletion_date is None:
                tags = self.tagger.get_tag_dict_for_resource(plan.backup_plan_arn)
                yield TaggedResource(arn=plan.backup_plan_arn, tags=tags, resource_type="backup:backup-plan")

    def update_backup_plan(self):
        plan = live_plan(self.backup_backend, self.path.split("?")[0].strip("/").split("/")[-1])
        fresh = Plan(json.loads(self.body)["BackupPlan"], plan.creator_request_id, self.backup_backend)
        plan.backup_plan, plan.version_id = fresh.backup_plan, fresh.version_id
        return json.dumps({"BackupPlanId": plan.backup_plan_id, "BackupPlanArn": plan.backup_plan_arn,
                           "CreationDate": plan.creation_date, "VersionId": plan.version_id})

    def create_backup_selection(self):
        plan_id, _ = plan_and_rest(self)
        live_plan(self.backup_backend, plan_id)
        body = json.loads(self.body)
        selection = body["BackupSelection"]
        if not selection.get("SelectionName") or not selection.get("IamRoleArn"):
            raise InvalidRequestException(msg="SelectionName and IamRoleArn are required")
        found = selections(self.backup_backend, plan_id)
        request = body.get("CreatorRequestId")
        for sid, s in found.items():
            # A retried request with the same CreatorRequestId gets the
            # selection it made (the parameter's documented purpose).
            if request and s["CreatorRequestId"] == request:
                return json.dumps({"SelectionId": sid, "BackupPlanId": plan_id, "CreationDate": s["CreationDate"]})
        sid = str(mock_random.uuid4())
        found[sid] = {"BackupSelection": selection, "CreatorRequestId": request, "CreationDate": unix_time()}
        return json.dumps({"SelectionId": sid, "BackupPlanId": plan_id, "CreationDate": found[sid]["CreationDate"]})

    def one_selection(self):
        plan_id, sid = plan_and_rest(self)
        live_plan(self.backup_backend, plan_id)
        s = selections(self.backup_backend, plan_id).get(sid)
        if s is None:
            raise ResourceNotFoundException(msg=f"Failed reading selection {sid}")
        return plan_id, sid, s

    def get_backup_selection(self):
        plan_id, sid, s = one_selection(self)
        return json.dumps({"BackupSelection": s["BackupSelection"], "SelectionId": sid, "BackupPlanId": plan_id,
                           "CreationDate": s["CreationDate"], "CreatorRequestId": s["CreatorRequestId"]})

    def list_backup_selections(self):
        plan_id, _ = plan_and_rest(self)
        live_plan(self.backup_backend, plan_id)
        rows = [{"SelectionId": sid, "SelectionName": s["BackupSelection"]["SelectionName"], "BackupPlanId": plan_id,
                 "CreationDate": s["CreationDate"], "CreatorRequestId": s["CreatorRequestId"],
                 "IamRoleArn": s["BackupSelection"]["IamRoleArn"]}
                for sid, s in selections(self.backup_backend, plan_id).items()]
        return json.dumps({"BackupSelectionsList": rows})

    def delete_backup_selection(self):
        plan_id, sid, _ = one_selection(self)
        del selections(self.backup_backend, plan_id)[sid]
        return "{}"

    def list_tags(self):
        arn = unquote(self.path.split("?")[0].split("/tags/", 1)[1].rstrip("/"))
        return json.dumps({"Tags": self.backup_backend.list_tags(resource_arn=arn)})

    BackupResponse.list_tags = list_tags
    BackupBackend.create_backup_plan = create_backup_plan
    BackupBackend.delete_backup_plan = delete_backup_plan
    BackupBackend.iter_tagged_resources = iter_tagged_resources
    BackupResponse.update_backup_plan = update_backup_plan
    BackupResponse.create_backup_selection = create_backup_selection
    BackupResponse.get_backup_selection = get_backup_selection
    BackupResponse.list_backup_selections = list_backup_selections
    BackupResponse.delete_backup_selection = delete_backup_selection
