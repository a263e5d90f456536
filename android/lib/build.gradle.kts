// The Offst Android library (AAR): the uniffi-generated Kotlin API plus liboffst.so for
// arm64-v8a, armeabi-v7a and x86_64 (built by ../scripts/build-android.sh).
plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
    `maven-publish`
}

android {
    namespace = "org.offst"
    compileSdk = 35

    defaultConfig {
        // uniffi's generated code needs API 24+ (API 22 crashes on a missing symbol, uniffi #2400).
        minSdk = 24
        testInstrumentationRunner = "androidx.test.runner.AndroidJUnitRunner"
        consumerProguardFiles("consumer-rules.pro")
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    kotlinOptions {
        jvmTarget = "17"
    }

    sourceSets {
        getByName("main") {
            // Written by ../scripts/build-android.sh.
            java.srcDir("src/main/kotlin")
            jniLibs.srcDir("src/main/jniLibs")
        }
    }

    publishing {
        singleVariant("release") {
            withSourcesJar()
        }
    }
}

dependencies {
    // The @aar variant carries libjnidispatch.so for every ABI; the plain jar does not.
    implementation("net.java.dev.jna:jna:5.15.0@aar")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-core:1.9.0")
    androidTestImplementation("androidx.test.ext:junit:1.2.1")
    androidTestImplementation("androidx.test:runner:1.6.2")
}

publishing {
    publications {
        register<MavenPublication>("release") {
            groupId = "org.offst"
            artifactId = "offst-android"
            version = "0.1.0"
            afterEvaluate { from(components["release"]) }
        }
    }
}
