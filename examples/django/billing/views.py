from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_POST

from .models import Subscription


@require_POST
@login_required
def change_plan(request, pk):
    """The service layer's plan change, through the ORM."""
    sub = get_object_or_404(Subscription, pk=pk, tenant=request.user.profile.tenant)
    sub.plan = request.POST["plan"]
    sub.save()
    return HttpResponse(status=204)
