NAME = "helper from lib"
