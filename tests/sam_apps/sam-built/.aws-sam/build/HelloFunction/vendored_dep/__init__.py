WHERE = "vendored by sam build"
