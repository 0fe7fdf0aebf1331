from rest_framework.routers import SimpleRouter

from treatments import views

router = SimpleRouter(trailing_slash=True)
router.register("catalogs/body-regions", views.BodyRegionViewSet, basename="body-region")
router.register("catalogs/muscles", views.MuscleViewSet, basename="muscle")
router.register("catalogs/trigger-points", views.TriggerPointViewSet, basename="trigger-point")
router.register("catalogs/art-protocols", views.ArtProtocolViewSet, basename="art-protocol")
router.register("catalogs/acupuncture-points", views.AcupuncturePointViewSet, basename="acupuncture-point")

urlpatterns = router.urls
