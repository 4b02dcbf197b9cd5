{"algorithm":"Ed25519","keyId":"1e7b475a3d7a21b86a057e7687431a8a","signature":"DUoqYbsuRuMRBuFOrSPAuPCthEwx6rmZzx/09+uPXIm+L6CrvXHZETr+AxVv5FLojo8oijxdCcddaN5KhYDmCA=="}
