{"algorithm":"Ed25519","keyId":"dd538e9fde47e1889d967640d3319312","signature":"5GU2nBeUdMq55AhNlso0w9EoLg5sZwc4StJSKZRweWQapsR2aZEFgtXj3z1OLRvsvAjm2+6Yc+d4aFnjK2xADQ=="}
