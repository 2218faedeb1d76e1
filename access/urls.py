from django.urls import path
from django.views.generic import TemplateView

# Placeholder until merged with the console's access.urls: the accept page.
urlpatterns = [path("invitations/<str:token>/", TemplateView.as_view(), name="invitation-accept")]
