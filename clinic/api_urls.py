from rest_framework.routers import SimpleRouter

from clinic import message_views, views

router = SimpleRouter(trailing_slash=True)
router.register("locations", views.LocationViewSet, basename="location")
router.register("services", views.ServiceViewSet, basename="service")
router.register("rooms", views.RoomViewSet, basename="room")
router.register("practitioners", views.PractitionerViewSet, basename="practitioner")
router.register("messages", message_views.MessageViewSet, basename="message")

urlpatterns = router.urls
