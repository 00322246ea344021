"""Plays the example: a tenant admin changes a plan through the app, then
the platform's staff moves it to enterprise through the Django admin. Prints
the subscription's ID and the users' IDs as JSON."""
import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.test import Client

from billing.models import Profile, Subscription, Tenant


class Command(BaseCommand):
    def handle(self, *args, **options):
        User = get_user_model()
        acme = Tenant.objects.create(slug="acme", name="Acme")
        nina = User.objects.create_user("nina", "nina@acme.example", "pw")
        Profile.objects.create(user=nina, tenant=acme)
        staff = User.objects.create_superuser("sam", "sam@saas.example", "pw")
        Profile.objects.create(user=staff, tenant=acme)
        sub = Subscription.objects.create(tenant=acme, plan="free", seats=3)
        Subscription.objects.create(tenant=acme, plan="trial", seats=1)

        app = Client()
        app.force_login(nina)
        r = app.post("/subscriptions/%d/plan" % sub.pk, {"plan": "pro"}, HTTP_X_REQUEST_ID="req-app-1")
        assert r.status_code == 204, r.status_code

        admin = Client()
        admin.force_login(staff)
        r = admin.post(
            "/admin/billing/subscription/",
            {"action": "make_enterprise", "_selected_action": [str(sub.pk)]},
            HTTP_X_REQUEST_ID="req-admin-1",
        )
        assert r.status_code == 302, r.status_code
        sub.refresh_from_db()
        assert sub.plan == "enterprise", sub.plan
        print(json.dumps({"subscription": sub.pk, "nina": nina.pk, "sam": staff.pk}))
