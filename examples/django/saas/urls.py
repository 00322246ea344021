from django.contrib import admin
from django.urls import path

from billing import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("subscriptions/<int:pk>/plan", views.change_plan),
]
