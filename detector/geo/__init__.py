"""Where things are on the map: vehicle tracks (GPX, NMEA, CSV) and image-to-ground projection, for
cameras that move (patrol vehicles)."""
