"""The only Trail code a Django app needs.

Each request runs in one transaction that first tells PostgreSQL who is
acting, for which tenant, in which request (set_config(..., true) lasts
until the transaction ends). Trail's capture triggers read these settings
and write an audit event for every row the request changes, in the same
transaction: ORM saves, bulk updates, the admin and raw SQL alike.
"""
import uuid

from django.db import connection, transaction


class TrailMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with transaction.atomic():
            user = getattr(request, "user", None)
            actor, tenant = "anonymous", ""
            if user is not None and user.is_authenticated:
                actor = "user:%s" % user.pk
                profile = getattr(user, "profile", None)
                if profile is not None:
                    tenant = profile.tenant_id
            request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
            with connection.cursor() as cur:
                cur.execute(
                    "SELECT set_config('trail.actor', %s, true),"
                    " set_config('trail.tenant', %s, true),"
                    " set_config('trail.request_id', %s, true)",
                    [actor, tenant, request_id],
                )
            response = self.get_response(request)
        response["X-Request-Id"] = request_id
        return response


class acting:
    """Names the actor (and tenant) of the changes made outside a request —
    management commands, jobs — in a transaction of their own:

        with acting("system:manage.py close_trials", tenant="acme"):
            Subscription.objects.filter(plan="trial").update(plan="free")
    """

    def __init__(self, actor, tenant="", request_id=""):
        self.actor, self.tenant, self.request_id = actor, tenant, request_id
        self.atomic = transaction.atomic()

    def __enter__(self):
        self.atomic.__enter__()
        with connection.cursor() as cur:
            cur.execute(
                "SELECT set_config('trail.actor', %s, true),"
                " set_config('trail.tenant', %s, true),"
                " set_config('trail.request_id', %s, true)",
                [self.actor, self.tenant, self.request_id or uuid.uuid4().hex],
            )
        return self

    def __exit__(self, *exc):
        return self.atomic.__exit__(*exc)
