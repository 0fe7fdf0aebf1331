from rest_framework.routers import SimpleRouter

from clinic.api import views
from clinic.api.tombstones import TombstoneViewSet
from clinic.messaging import api as message_views

router = SimpleRouter(trailing_slash=True)
router.register("locations", views.LocationViewSet, basename="location")
router.register("services", views.ServiceViewSet, basename="service")
router.register("rooms", views.RoomViewSet, basename="room")
router.register("practitioners", views.PractitionerViewSet, basename="practitioner")
router.register("break-glass", views.BreakGlassViewSet, basename="break-glass")
router.register("api-keys", views.ApiKeyViewSet, basename="api-key")
router.register("audit-events", views.AuditEventViewSet, basename="audit-event")
router.register("webhooks", views.WebhookEndpointViewSet, basename="webhook")
router.register("webhook-deliveries", views.WebhookDeliveryViewSet, basename="webhook-delivery")
router.register("messages", message_views.MessageViewSet, basename="message")
router.register("deleted", TombstoneViewSet, basename="deleted")

urlpatterns = router.urls
